package transform

import (
	"strings"
	"testing"
)

// The examples are SageMaker's own, from the DataProcessing reference and
// the batch transform guide, and the cases around them.
func TestPathEval(t *testing.T) {
	doc := `{"id": 7, "features": [1, 2, 3], "meta": {"a": "x", "b": "y"}, "SageMakerOutput": {"label": "ok"}}`
	row := `["id-1", "5.1", "3.5", "1.4", "0.2", "setosa"]`
	for _, c := range []struct {
		path, in, want string
	}{
		{"$", doc, doc},
		{"$.features", doc, `[1,2,3]`},
		{"$.meta.a", doc, `"x"`},
		{"$['id','SageMakerOutput']", doc, `{"id":7,"SageMakerOutput":{"label":"ok"}}`},
		{`$["meta"]["b"]`, doc, `"y"`},
		{"$.features[0]", doc, `1`},
		{"$.features[-1]", doc, `3`},
		{"$.features[1:]", doc, `[2,3]`},
		{"$.features[:2]", doc, `[1,2]`},
		{"$.meta.*", doc, `["x","y"]`},
		{"$.features[*]", doc, `[1,2,3]`},
		{"$[1:]", row, `["5.1","3.5","1.4","0.2","setosa"]`},
		{"$[0,5:]", row, `["id-1","setosa"]`},
		{"$[0,-1]", row, `["id-1","setosa"]`},
		{"$[1:3]", row, `["5.1","3.5"]`},
		{"$[9:]", row, `[]`},
	} {
		p, err := ParsePath(c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		got, err := p.Eval([]byte(c.in))
		if err != nil {
			t.Fatalf("%s on %s: %v", c.path, c.in, err)
		}
		if string(compact(got)) != string(compact([]byte(c.want))) {
			t.Errorf("%s on %s = %s, want %s", c.path, c.in, got, c.want)
		}
	}
}

func TestPathErrors(t *testing.T) {
	for _, c := range []struct{ path, in, want string }{
		{"features", "", "must start with $"},
		{"$.", "", "a name must follow"},
		{"$[1", "", "without ']'"},
		{"$['a',0]", "", "names or indexes, not both"},
		{"$[a]", "", "not an index"},
		{"$[::2]", "", "steps are not supported"},
		{"$.missing", `{"a":1}`, `no member "missing"`},
		{"$[7]", `[1,2]`, "index 7 is outside"},
		{"$.a", `[1]`, "not an object"},
		{"$[0]", `{"a":1}`, "not an array"},
	} {
		p, err := ParsePath(c.path)
		if err == nil {
			_, err = p.Eval([]byte(c.in))
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s on %q: error %v, want one saying %q", c.path, c.in, err, c.want)
		}
	}
}

func TestProcessorJoinsAndFilters(t *testing.T) {
	for _, c := range []struct {
		name           string
		spec           Spec
		record, answer string
		input, output  string
	}{
		{name: "json join keeps the input's member order",
			spec:   Spec{DataProcessing: &DataProcessing{InputFilter: "$.text", JoinSource: JoinInput}},
			record: `{"id": "a", "text": "hi"}`, answer: `{"label":"greeting"}` + "\n",
			input: `"hi"`, output: `{"id":"a","text":"hi","SageMakerOutput":{"label":"greeting"}}`},
		{name: "json join and output filter",
			spec:   Spec{DataProcessing: &DataProcessing{JoinSource: JoinInput, OutputFilter: "$['id','SageMakerOutput']"}},
			record: `{"id": "a", "text": "hi"}`, answer: `{"label":"greeting"}`,
			input: `{"id": "a", "text": "hi"}`, output: `{"id":"a","SageMakerOutput":{"label":"greeting"}}`},
		{name: "a non-object input is wrapped",
			spec:   Spec{DataProcessing: &DataProcessing{JoinSource: JoinInput}},
			record: `[1,2]`, answer: `not json`,
			input: `[1,2]`, output: `{"SageMakerInput":[1,2],"SageMakerOutput":"not json"}`},
		{name: "csv",
			spec: Spec{TransformInput: TransformInput{ContentType: "text/csv"},
				DataProcessing: &DataProcessing{InputFilter: "$[1:]", JoinSource: JoinInput, OutputFilter: "$[0,-1]"}},
			record: `id-1,5.1,"3,5"`, answer: "0.93\n",
			input: `5.1,"3,5"`, output: `id-1,0.93`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := newProcessor(&c.spec)
			if err != nil {
				t.Fatal(err)
			}
			in, err := p.input([]byte(c.record))
			if err != nil || string(in) != c.input {
				t.Fatalf("input %s, %v; want %s", in, err, c.input)
			}
			out, err := p.output([]byte(c.record), []byte(c.answer))
			if err != nil || string(out) != c.output {
				t.Fatalf("output %s, %v; want %s", out, err, c.output)
			}
		})
	}
}

func TestSpecValidation(t *testing.T) {
	valid := func() Spec {
		return Spec{TransformJobName: "j", ModelName: "m",
			TransformInput:     TransformInput{DataSource: DataSource{S3DataSource{S3URI: "s3://b/in/"}}, SplitType: SplitLine},
			TransformOutput:    TransformOutput{S3OutputPath: "s3://b/out/"},
			TransformResources: TransformResources{InstanceType: "ml.m5.large", InstanceCount: 1}}
	}
	s := valid()
	if fe := s.Validate(); fe != nil {
		t.Fatal(fe)
	}
	if *s.MaxPayloadInMB != 6 || s.BatchStrategy != MultiRecord || *s.ModelClientConfig.InvocationsMaxRetries != 3 {
		t.Fatalf("defaults not filled in: %+v", s)
	}
	ints := func(n int) *int { return &n }
	for _, c := range []struct {
		field  string
		change func(*Spec)
	}{
		{"TransformJobName", func(s *Spec) { s.TransformJobName = "no_underscores" }},
		{"TransformInput.SplitType", func(s *Spec) { s.TransformInput.SplitType = "RecordIO" }},
		{"TransformInput.DataSource.S3DataSource.S3Uri", func(s *Spec) { s.TransformInput.DataSource.S3DataSource.S3URI = "gs://b/x" }},
		{"MaxPayloadInMB", func(s *Spec) { s.MaxPayloadInMB = ints(101) }},
		{"MaxPayloadInMB", func(s *Spec) { s.MaxPayloadInMB = ints(0) }},
		{"MaxConcurrentTransforms", func(s *Spec) { s.MaxConcurrentTransforms = 20 }},
		{"DataProcessing.InputFilter", func(s *Spec) { s.DataProcessing = &DataProcessing{InputFilter: "features"} }},
		{"DataProcessing", func(s *Spec) {
			s.TransformInput.ContentType = "image/png"
			s.DataProcessing = &DataProcessing{JoinSource: JoinInput}
		}},
		{"TransformOutput.AssembleWith", func(s *Spec) { s.DataProcessing = &DataProcessing{JoinSource: JoinInput} }},
	} {
		s := valid()
		c.change(&s)
		fe := s.Validate()
		if fe == nil || fe.Field != c.field {
			t.Errorf("want a problem with %s, got %v", c.field, fe)
		}
	}
}
