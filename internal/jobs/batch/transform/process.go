package transform

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DataProcessing, record by record: the input filter picks what the model
// sees of each record; the join puts the answer beside the whole input
// record (JSON: as its SageMakerOutput member; CSV: as the columns after
// its own); the output filter picks what is kept of that. JSON records
// are filtered as JSON; a CSV row as the JSON array of its columns, and
// written back as a row.

// processor applies a job's DataProcessing.
type processor struct {
	format       int
	inputFilter  *Path // nil: the whole record
	outputFilter *Path // nil: the whole result
	join         bool
}

func newProcessor(s *Spec) (*processor, error) {
	p := &processor{format: s.format()}
	dp := s.DataProcessing
	if dp == nil {
		return p, nil
	}
	var err error
	if dp.InputFilter != "" && dp.InputFilter != "$" {
		if p.inputFilter, err = ParsePath(dp.InputFilter); err != nil {
			return nil, err
		}
	}
	if dp.OutputFilter != "" && dp.OutputFilter != "$" {
		if p.outputFilter, err = ParsePath(dp.OutputFilter); err != nil {
			return nil, err
		}
	}
	p.join = dp.JoinSource == JoinInput
	return p, nil
}

// perRecord reports whether answers are processed record by record.
func (p *processor) perRecord() bool { return p.join || p.outputFilter != nil }

// input returns what the model is sent of a record.
func (p *processor) input(record []byte) ([]byte, error) {
	if p.inputFilter == nil {
		return record, nil
	}
	return p.filter(p.inputFilter, record)
}

// output returns what is kept of the answer to a record.
func (p *processor) output(record, answer []byte) ([]byte, error) {
	answer = bytes.TrimRight(answer, "\r\n")
	result := answer
	if p.join {
		var err error
		if result, err = p.joined(record, answer); err != nil {
			return nil, err
		}
	}
	if p.outputFilter == nil {
		return result, nil
	}
	return p.filter(p.outputFilter, result)
}

func (p *processor) filter(path *Path, data []byte) ([]byte, error) {
	if p.format == formatCSV {
		row, err := csvRow(data)
		if err != nil {
			return nil, err
		}
		arr, _ := json.Marshal(row)
		out, err := path.Eval(arr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return csvLine(out)
	}
	data = bytes.TrimSpace(data)
	if !json.Valid(data) {
		return nil, fmt.Errorf("%s: the record is not JSON", path)
	}
	out, err := path.Eval(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// joined puts the answer beside the input record.
func (p *processor) joined(record, answer []byte) ([]byte, error) {
	if p.format == formatCSV {
		out := bytes.TrimRight(record, "\r\n")
		return append(append(append([]byte(nil), out...), ','), answer...), nil
	}
	in := bytes.TrimSpace(record)
	if !json.Valid(in) {
		return nil, errors.New("the input record is not JSON, so the answer cannot join it")
	}
	ans := bytes.TrimSpace(answer)
	if !json.Valid(ans) {
		ans, _ = json.Marshal(string(answer))
	} else {
		ans = compact(ans)
	}
	var b bytes.Buffer
	if in[0] == '{' {
		// Inserted before the closing brace, so the input's members keep
		// their order.
		c := compact(in)
		b.WriteByte('{')
		if len(c) > 2 {
			b.Write(c[1 : len(c)-1])
			b.WriteByte(',')
		}
		b.WriteString(`"SageMakerOutput":`)
		b.Write(ans)
		b.WriteByte('}')
		return b.Bytes(), nil
	}
	b.WriteString(`{"SageMakerInput":`)
	b.Write(compact(in))
	b.WriteString(`,"SageMakerOutput":`)
	b.Write(ans)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// csvRow reads one CSV row.
func csvRow(line []byte) ([]string, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimRight(line, "\r\n")))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	row, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("the record is not a CSV row: %v", err)
	}
	return row, nil
}

// csvLine writes a filter's result as a CSV row: an array's elements as
// columns, or one value as the only column.
func csvLine(v json.RawMessage) ([]byte, error) {
	var cols []string
	if elems, err := arrayElems(v); err == nil {
		for _, e := range elems {
			cols = append(cols, scalar(e))
		}
	} else {
		cols = []string{scalar(v)}
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(cols)
	w.Flush()
	return bytes.TrimRight(b.Bytes(), "\n"), w.Error()
}

// scalar is a JSON value as a CSV column: a string's text, else the JSON.
func scalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(v))
}
