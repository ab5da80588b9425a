package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/auth/bearer"

	"github.com/junctionhq/junction/internal/testkit/fakebedrock"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// claudeID is a Bedrock model id as applications write it, served here
// by the OpenAI upstream: the SDK sends its ':' escaped and signs it
// escaped twice.
const claudeID = "anthropic.claude-3-5-haiku-20241022-v1:0"

// bedrockModels are models added to the base config for these tests.
var bedrockModels = fmt.Sprintf(`  - {name: %q, provider: openai, upstream_model: gpt-4o-mini-2024-07-18, price: {input_per_1k: 1, output_per_1k: 2}}`, claudeID)

// isolateAWS keeps the developer's AWS setup out of the SDK clients in
// this process, the Bedrock provider's included.
func isolateAWS(t testing.TB) {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "no-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// awsCredentials issues an access-key pair for a key through the admin
// API.
func (j *junction) awsCredentials(keyID string) (akid, secret string) {
	j.t.Helper()
	status, _, b := j.do("POST", "/api/v1/keys/"+keyID+"/aws-credentials", adminKey, "")
	if status != http.StatusCreated {
		j.t.Fatalf("create AWS credentials: %d %s", status, b)
	}
	var out struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		KeyID           string `json:"key_id"`
	}
	json.Unmarshal(b, &out)
	if out.AccessKeyID == "" || out.SecretAccessKey == "" || out.KeyID != keyID {
		j.t.Fatalf("create AWS credentials: %s", b)
	}
	return out.AccessKeyID, out.SecretAccessKey
}

// bedrockClient is the AWS SDK's Bedrock runtime client as an
// application would configure it for Junction: only the endpoint and the
// credentials differ from calling AWS. Retries are off, so that each test
// sees each answer.
func (j *junction) bedrockClient(akid, secret string, opts ...func(*bedrockruntime.Options)) *bedrockruntime.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}
	return bedrockruntime.NewFromConfig(cfg, append([]func(*bedrockruntime.Options){func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String(j.url)
		o.Retryer = aws.NopRetryer{}
	}}, opts...)...)
}

func userText(s string) types.Message {
	return types.Message{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: s}}}
}

// outputText returns the text of a Converse answer and its toolUse blocks.
func outputText(t *testing.T, out *bedrockruntime.ConverseOutput) (string, []types.ToolUseBlock) {
	t.Helper()
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok || msg.Value.Role != types.ConversationRoleAssistant {
		t.Fatalf("output %#v", out.Output)
	}
	var text strings.Builder
	var tools []types.ToolUseBlock
	for _, b := range msg.Value.Content {
		switch b := b.(type) {
		case *types.ContentBlockMemberText:
			text.WriteString(b.Value)
		case *types.ContentBlockMemberToolUse:
			tools = append(tools, b.Value)
		}
	}
	return text.String(), tools
}

func weatherToolConfig() *types.ToolConfiguration {
	return &types.ToolConfiguration{
		Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
			Name:        aws.String("get_weather"),
			Description: aws.String("Current weather for a city"),
			InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{
				"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
			})},
		}}},
		ToolChoice: &types.ToolChoiceMemberAuto{},
	}
}

// streamed is a ConverseStream answer, read to its end.
type streamed struct {
	events     []string
	text       string
	toolStarts []types.ToolUseBlockStart
	toolInput  string
	stop       types.StopReason
	usage      *types.TokenUsage
	latency    int64
	err        error
}

func readStream(t *testing.T, out *bedrockruntime.ConverseStreamOutput) streamed {
	t.Helper()
	es := out.GetStream()
	defer es.Close()
	var s streamed
	for ev := range es.Events() {
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberMessageStart:
			s.events = append(s.events, "messageStart")
		case *types.ConverseStreamOutputMemberContentBlockStart:
			s.events = append(s.events, "contentBlockStart")
			if tu, ok := v.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
				s.toolStarts = append(s.toolStarts, tu.Value)
			}
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if len(s.events) == 0 || s.events[len(s.events)-1] != "contentBlockDelta" {
				s.events = append(s.events, "contentBlockDelta")
			}
			switch d := v.Value.Delta.(type) {
			case *types.ContentBlockDeltaMemberText:
				s.text += d.Value
			case *types.ContentBlockDeltaMemberToolUse:
				s.toolInput += aws.ToString(d.Value.Input)
			}
		case *types.ConverseStreamOutputMemberContentBlockStop:
			s.events = append(s.events, "contentBlockStop")
		case *types.ConverseStreamOutputMemberMessageStop:
			s.events = append(s.events, "messageStop")
			s.stop = v.Value.StopReason
		case *types.ConverseStreamOutputMemberMetadata:
			s.events = append(s.events, "metadata")
			s.usage = v.Value.Usage
			s.latency = aws.ToInt64(v.Value.Metrics.LatencyMs)
		}
	}
	s.err = es.Err()
	return s
}

func usageIs(u *types.TokenUsage, in, out, total, cacheRead, cacheWrite int32) bool {
	return u != nil && aws.ToInt32(u.InputTokens) == in && aws.ToInt32(u.OutputTokens) == out && aws.ToInt32(u.TotalTokens) == total &&
		aws.ToInt32(u.CacheReadInputTokens) == cacheRead && aws.ToInt32(u.CacheWriteInputTokens) == cacheWrite
}

// TestBedrockSDKConverseOverOpenAI is the drop-in promise: a
// bedrockruntime client signing with Junction-issued credentials reaches
// a model served by an OpenAI-compatible upstream, and the call is
// accounted to the key the credentials belong to.
func TestBedrockSDKConverseOverOpenAI(t *testing.T) {
	isolateAWS(t)
	fake := &fakeopenai.Server{Record: true, PromptTokens: 120, CompletionTokens: 30}
	j := start(t, fake, bedrockModels)
	keyID, _ := j.createKey("bedrock-app", map[string]string{"team": "search", "env": "prod"})
	akid, secret := j.awsCredentials(keyID)
	client := j.bedrockClient(akid, secret)

	out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId:         aws.String(claudeID),
		System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Be brief."}},
		Messages:        []types.Message{userText("Say hello")},
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(100), Temperature: aws.Float32(0.25), StopSequences: []string{"END"}},
		RequestMetadata: map[string]string{"app": "faq"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := outputText(t, out); text != "Hello from the fake upstream. Junction forwarded this." || out.StopReason != types.StopReasonEndTurn {
		t.Fatalf("answer %q, stop %q", text, out.StopReason)
	}
	if !usageIs(out.Usage, 120, 30, 150, 0, 0) || aws.ToInt64(out.Metrics.LatencyMs) < 0 {
		t.Fatalf("usage %+v metrics %+v", out.Usage, out.Metrics)
	}

	up := fake.Requests()[0]
	msgs := up.Body["messages"].([]any)
	if up.Body["model"] != "gpt-4o-mini-2024-07-18" || len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" {
		t.Fatalf("upstream body %s", up.Raw)
	}
	if up.Body["max_tokens"] != float64(100) || up.Body["temperature"] != 0.25 || fmt.Sprint(up.Body["stop"]) != "[END]" {
		t.Fatalf("inference settings not forwarded: %s", up.Raw)
	}

	r := j.records(1)[0]
	if r.Surface != "bedrock" || r.Model != claudeID || r.Provider != "openai" || r.UpstreamModel != "gpt-4o-mini-2024-07-18" {
		t.Fatalf("record %+v", r)
	}
	if r.KeyID != keyID || r.Tags["team"] != "search" || r.Tags["env"] != "prod" || r.Tags["app"] != "faq" {
		t.Fatalf("record key %s tags %v: want the credential's key, its tags and requestMetadata", r.KeyID, r.Tags)
	}
	if r.InputTokens != 120 || r.OutputTokens != 30 || r.Status != 200 || r.Stream {
		t.Fatalf("record %+v", r)
	}
	if want := (120*1.0 + 30*2.0) / 1000; r.CostUSD == nil || math.Abs(*r.CostUSD-want) > 1e-12 {
		t.Fatalf("cost %v, want %v", r.CostUSD, want)
	}
}

func TestBedrockSDKToolUseRoundTrip(t *testing.T) {
	isolateAWS(t)
	fake := &fakeopenai.Server{Record: true}
	j := start(t, fake, bedrockModels)
	client := j.bedrockClient(j.awsCredentials(j.adminKeyID()))
	in := &bedrockruntime.ConverseInput{
		ModelId:    aws.String(claudeID),
		Messages:   []types.Message{userText("Weather in Paris?")},
		ToolConfig: weatherToolConfig(),
	}
	out, err := client.Converse(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	_, tools := outputText(t, out)
	if out.StopReason != types.StopReasonToolUse || len(tools) != 1 || aws.ToString(tools[0].Name) != "get_weather" ||
		aws.ToString(tools[0].ToolUseId) != "call_abc123" {
		t.Fatalf("stop %q tools %+v", out.StopReason, tools)
	}
	var args map[string]string
	if err := tools[0].Input.UnmarshalSmithyDocument(&args); err != nil || args["city"] != "Paris" || args["unit"] != "celsius" {
		t.Fatalf("input %v, %v", args, err)
	}
	sent, _ := json.Marshal(fake.Requests()[0].Body["tools"])
	if !strings.Contains(string(sent), `"required":["city"]`) || fake.Requests()[0].Body["tool_choice"] != "auto" {
		t.Fatalf("tools sent upstream as %s, tool_choice %v", sent, fake.Requests()[0].Body["tool_choice"])
	}

	// The application sends the tool's result back, as Bedrock expects:
	// the assistant turn as received, then a user turn with a toolResult.
	in.Messages = append(in.Messages, out.Output.(*types.ConverseOutputMemberMessage).Value, types.Message{
		Role: types.ConversationRoleUser,
		Content: []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
			ToolUseId: tools[0].ToolUseId,
			Content:   []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberJson{Value: document.NewLazyDocument(map[string]any{"temp_c": 21})}},
			Status:    types.ToolResultStatusSuccess,
		}}},
	})
	if _, err := client.Converse(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	msgs := fake.Requests()[1].Body["messages"].([]any)
	call := msgs[1].(map[string]any)
	result := msgs[2].(map[string]any)
	if call["role"] != "assistant" || len(call["tool_calls"].([]any)) != 1 {
		t.Fatalf("assistant turn sent as %v", call)
	}
	if result["role"] != "tool" || result["tool_call_id"] != "call_abc123" || result["content"] != `{"temp_c":21}` {
		t.Fatalf("tool result sent as %v", result)
	}
}

func TestBedrockSDKConverseStream(t *testing.T) {
	isolateAWS(t)
	fake := &fakeopenai.Server{Record: true, PromptTokens: 50, CompletionTokens: 10, CachedTokens: 20}
	j := start(t, fake, bedrockModels)
	keyID, _ := j.createKey("stream-app", map[string]string{"team": "chat"})
	client := j.bedrockClient(j.awsCredentials(keyID))

	out, err := client.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId:  aws.String(claudeID),
		Messages: []types.Message{userText("Say hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := readStream(t, out)
	if s.err != nil {
		t.Fatal(s.err)
	}
	if got := strings.Join(s.events, ","); got != "messageStart,contentBlockDelta,contentBlockStop,messageStop,metadata" {
		t.Fatalf("events %s", got)
	}
	if s.text != "Hello from the fake upstream. Junction forwarded this." || s.stop != types.StopReasonEndTurn {
		t.Fatalf("text %q stop %q", s.text, s.stop)
	}
	// 50 prompt tokens of which 20 cached: Bedrock counts 30 + 20 read.
	if !usageIs(s.usage, 30, 10, 60, 20, 0) {
		t.Fatalf("usage %+v", s.usage)
	}
	if so, _ := fake.Requests()[0].Body["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatal("the upstream was not asked for usage")
	}

	// A tool call streams as contentBlockStart and input fragments.
	out, err = client.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String(claudeID), Messages: []types.Message{userText("Weather in Paris?")}, ToolConfig: weatherToolConfig(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s = readStream(t, out)
	if s.err != nil {
		t.Fatal(s.err)
	}
	if got := strings.Join(s.events, ","); got != "messageStart,contentBlockStart,contentBlockDelta,contentBlockStop,messageStop,metadata" {
		t.Fatalf("events %s", got)
	}
	if len(s.toolStarts) != 1 || aws.ToString(s.toolStarts[0].Name) != "get_weather" || aws.ToString(s.toolStarts[0].ToolUseId) != "call_abc123" ||
		s.toolInput != `{"city":"Paris","unit":"celsius"}` || s.stop != types.StopReasonToolUse {
		t.Fatalf("tool stream %+v", s)
	}

	recs := j.records(2)
	for _, r := range recs {
		if r.Surface != "bedrock" || !r.Stream || r.KeyName != "stream-app" || r.Tags["team"] != "chat" || r.TTFTMS == nil || r.Status != 200 {
			t.Fatalf("record %+v", r)
		}
	}
	if r := recs[1]; r.InputTokens != 50 || r.CachedTokens != 20 || r.OutputTokens != 10 || r.CostUSD == nil {
		t.Fatalf("record %+v", r)
	}
}

// startBedrockUpstream is a Junction whose "claude" model is served by a
// Bedrock provider pointed at fake, signing with credentials of its own.
func startBedrockUpstream(t *testing.T, fake *fakebedrock.Server) *junction {
	t.Helper()
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDUPSTREAM")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "upstream-secret")
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	return startWith(t, &fakeopenai.Server{},
		fmt.Sprintf(`  - {name: aws, type: bedrock, region: us-west-2, endpoint: %q}`, up.URL),
		`  - {name: claude, provider: aws, upstream_model: "anthropic.claude-3-5-sonnet-20240620-v1:0", price: {input_per_1k: 0.003, output_per_1k: 0.015, cached_input_per_1k: 0.0003}}`)
}

// TestBedrockSDKOverBedrockUpstream puts Junction between the SDK and
// Bedrock: the client signs for Junction, Junction signs for AWS.
func TestBedrockSDKOverBedrockUpstream(t *testing.T) {
	arrived := make(chan fakebedrock.Request, 4)
	fake := &fakebedrock.Server{Arrived: arrived, Usage: fakebedrock.Usage{InputTokens: 100, OutputTokens: 20, CacheReadInputTokens: 50, CacheWriteInputTokens: 10}}
	j := startBedrockUpstream(t, fake)
	keyID, _ := j.createKey("via-bedrock", map[string]string{"team": "ml"})
	akid, secret := j.awsCredentials(keyID)
	client := j.bedrockClient(akid, secret)

	out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String("claude"), Messages: []types.Message{userText("Say hello")},
		System: []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Be brief."}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := outputText(t, out); text != fakebedrock.DefaultText || !usageIs(out.Usage, 100, 20, 180, 50, 10) {
		t.Fatalf("answer %q usage %+v", text, out.Usage)
	}
	got := <-arrived
	if got.Model != "anthropic.claude-3-5-sonnet-20240620-v1:0" || !strings.Contains(got.Auth, "Credential=AKIDUPSTREAM/") || strings.Contains(got.Auth, akid) {
		t.Fatalf("upstream saw model %q auth %q: want Junction's own signature", got.Model, got.Auth)
	}
	if !strings.Contains(string(got.Body), `"system":[{"text":"Be brief."}]`) {
		t.Fatalf("upstream body %s", got.Body)
	}

	sout, err := client.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("claude"), Messages: []types.Message{userText("Say hello")}, ToolConfig: weatherToolConfig(),
	})
	if err != nil {
		t.Fatal(err)
	}
	<-arrived
	s := readStream(t, sout)
	if s.err != nil || s.toolInput != fakebedrock.ToolInput || s.stop != types.StopReasonToolUse || !usageIs(s.usage, 100, 20, 180, 50, 10) {
		t.Fatalf("stream %+v", s)
	}

	recs := j.records(2)
	for _, r := range recs {
		// The canonical count includes the cache reads and writes.
		if r.Surface != "bedrock" || r.Provider != "aws" || r.KeyID != keyID || r.Tags["team"] != "ml" || r.InputTokens != 160 || r.CachedTokens != 50 || r.OutputTokens != 20 {
			t.Fatalf("record %+v", r)
		}
		// 100 plain input, 10 cache writes at 1.25 × input, 50 cache reads, 20 out.
		want := (100*0.003 + 10*0.003*1.25 + 50*0.0003 + 20*0.015) / 1000
		if r.CostUSD == nil || math.Abs(*r.CostUSD-want) > 1e-12 {
			t.Fatalf("cost %v, want %v", r.CostUSD, want)
		}
	}
}

// TestBedrockSDKUpstreamFailures checks that Bedrock's own failures reach
// the client as the SDK's typed exceptions.
func TestBedrockSDKUpstreamFailures(t *testing.T) {
	var fault fakebedrock.Fault
	fake := &fakebedrock.Server{Fault: func(*fakebedrock.Request) fakebedrock.Fault { return fault }}
	j := startBedrockUpstream(t, fake)
	client := j.bedrockClient(j.awsCredentials(j.adminKeyID()))
	in := &bedrockruntime.ConverseInput{ModelId: aws.String("claude"), Messages: []types.Message{userText("hi")}}

	fault = fakebedrock.Fault{Status: 429, Code: "ThrottlingException", Message: "Too many requests, please wait before trying again.", RetryAfter: "3"}
	_, err := client.Converse(context.Background(), in)
	var throttled *types.ThrottlingException
	if !errors.As(err, &throttled) || !strings.Contains(throttled.ErrorMessage(), "provider aws") || !strings.Contains(throttled.ErrorMessage(), "Too many requests") {
		t.Fatalf("err = %v, want a ThrottlingException naming the provider", err)
	}
	if status, hdr := httpStatus(err); status != 429 || hdr.Get("Retry-After") != "3" {
		t.Fatalf("status %d Retry-After %q", status, hdr.Get("Retry-After"))
	}

	// A stream the model breaks mid-way ends in an exception, and no
	// messageStop.
	fault = fakebedrock.Fault{Exception: "modelStreamErrorException"}
	out, err := client.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: aws.String("claude"), Messages: []types.Message{userText("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	s := readStream(t, out)
	var broken *types.ModelStreamErrorException
	if !errors.As(s.err, &broken) || !strings.Contains(broken.ErrorMessage(), "provider aws") {
		t.Fatalf("stream err = %v, want a ModelStreamErrorException naming the provider", s.err)
	}
	if strings.Contains(strings.Join(s.events, ","), "messageStop") || s.text != "Hello " {
		t.Fatalf("events %v text %q", s.events, s.text)
	}
	recs := j.records(2)
	if recs[0].Status != 502 || !recs[0].Stream || recs[1].Status != 429 {
		t.Fatalf("records %+v", recs)
	}
}

// httpStatus returns the HTTP status and headers of an SDK operation
// error.
func httpStatus(err error) (int, http.Header) {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return 0, nil
	}
	return re.HTTPStatusCode(), re.Response.Header
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// adminKeyID returns the id of the configured admin key.
func (j *junction) adminKeyID() string {
	j.t.Helper()
	_, _, b := j.do("GET", "/api/v1/keys", adminKey, "")
	var out struct {
		Keys []struct {
			ID    string `json:"id"`
			Admin bool   `json:"admin"`
		} `json:"keys"`
	}
	json.Unmarshal(b, &out)
	for _, k := range out.Keys {
		if k.Admin {
			return k.ID
		}
	}
	j.t.Fatal("no admin key")
	return ""
}

func TestBedrockAuthentication(t *testing.T) {
	isolateAWS(t)
	j := start(t, &fakeopenai.Server{}, bedrockModels)
	keyID, bearerKey := j.createKey("app", map[string]string{"team": "search"})
	akid, secret := j.awsCredentials(keyID)
	in := &bedrockruntime.ConverseInput{ModelId: aws.String(claudeID), Messages: []types.Message{userText("hi")}}
	ctx := context.Background()

	cases := []struct {
		name, akid, secret, code, want string
	}{
		{"wrong secret", akid, "not-the-secret-access-key", "InvalidSignatureException", "Check your AWS Secret Access Key"},
		{"unknown access key", "AKIAIOSFODNN7EXAMPLE", secret, "UnrecognizedClientException", "unknown or revoked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := j.bedrockClient(tc.akid, tc.secret).Converse(ctx, in)
			if status, _ := httpStatus(err); status != 403 || errorCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (status %d code %s), want 403 %s", err, status, errorCode(err), tc.code)
			}
		})
	}

	t.Run("bearer key through the SDK", func(t *testing.T) {
		// The SDK sends bearer tokens over HTTPS only, as in production
		// behind TLS; a TLS proxy stands in for that.
		target, _ := url.Parse(j.url)
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.FlushInterval = -1
		tlsSrv := httptest.NewTLSServer(proxy)
		defer tlsSrv.Close()
		client := bedrockruntime.New(bedrockruntime.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(tlsSrv.URL), HTTPClient: tlsSrv.Client(), Retryer: aws.NopRetryer{},
			AuthSchemePreference:    []string{"httpBearerAuth"},
			BearerAuthTokenProvider: bearer.StaticTokenProvider{Token: bearer.Token{Value: bearerKey}},
		})
		out, err := client.Converse(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if text, _ := outputText(t, out); text == "" {
			t.Fatal("no answer")
		}
		sout, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: in.ModelId, Messages: in.Messages})
		if err != nil {
			t.Fatal(err)
		}
		if s := readStream(t, sout); s.err != nil || s.stop != types.StopReasonEndTurn {
			t.Fatalf("stream through TLS: %+v", s)
		}
	})

	t.Run("plain HTTP", func(t *testing.T) {
		body := `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`
		path := "/model/" + url.PathEscape(claudeID) + "/converse"
		if status, hdr, b := j.do("POST", path, bearerKey, body); status != 200 || !strings.Contains(string(b), `"stopReason":"end_turn"`) ||
			hdr.Get("X-Amzn-Requestid") == "" {
			t.Fatalf("bearer: %d %s", status, b)
		}
		status, hdr, b := j.do("POST", path, "", body)
		if status != 403 || hdr.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" || !strings.Contains(string(b), `"message":"Missing Authentication Token`) {
			t.Fatalf("no credentials: %d %v %s", status, hdr, b)
		}
		if status, hdr, _ := j.do("POST", path, "jk-not-a-key", body); status != 403 || hdr.Get("X-Amzn-Errortype") != "UnrecognizedClientException" {
			t.Fatalf("wrong bearer key: %d %v", status, hdr)
		}
	})

	t.Run("revocation", func(t *testing.T) {
		client := j.bedrockClient(akid, secret)
		if _, err := client.Converse(ctx, in); err != nil {
			t.Fatal(err)
		}
		status, _, b := j.do("GET", "/api/v1/keys/"+keyID+"/aws-credentials", adminKey, "")
		if status != 200 || !strings.Contains(string(b), akid) || strings.Contains(string(b), secret) {
			t.Fatalf("list must show the access key but never its secret: %d %s", status, b)
		}
		if status, _, b := j.do("DELETE", "/api/v1/aws-credentials/"+akid, adminKey, ""); status != 204 {
			t.Fatalf("revoke: %d %s", status, b)
		}
		if _, err := client.Converse(ctx, in); errorCode(err) != "UnrecognizedClientException" {
			t.Fatalf("revoked access key: %v", err)
		}
		// Revoking the Junction key revokes its other access keys too.
		akid2, secret2 := j.awsCredentials(keyID)
		if status, _, _ := j.do("DELETE", "/api/v1/keys/"+keyID, adminKey, ""); status != 204 {
			t.Fatal("revoke key")
		}
		if _, err := j.bedrockClient(akid2, secret2).Converse(ctx, in); errorCode(err) != "UnrecognizedClientException" || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("access key of a revoked key: %v", err)
		}
		if status, _, _ := j.do("POST", "/api/v1/keys/"+keyID+"/aws-credentials", adminKey, ""); status != 404 {
			t.Fatalf("credentials issued for a revoked key: %d", status)
		}
		if status, _, _ := j.do("DELETE", "/api/v1/aws-credentials/JKAKNOSUCHKEY", adminKey, ""); status != 404 {
			t.Fatalf("revoke unknown: %d", status)
		}
	})
	// Only the successful calls reach the ledger; refused ones never
	// reach a model.
	for _, r := range j.records(4) {
		if r.Surface != "bedrock" || r.Status != 200 {
			t.Fatalf("record %+v", r)
		}
	}
}

func TestBedrockSDKErrors(t *testing.T) {
	isolateAWS(t)
	fault := fakeopenai.Fault{}
	j := start(t, &fakeopenai.Server{Record: true, Fault: func(*fakeopenai.Request) fakeopenai.Fault { return fault }}, bedrockModels)
	client := j.bedrockClient(j.awsCredentials(j.adminKeyID()))
	ctx := context.Background()

	_, err := client.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("no-such-model"), Messages: []types.Message{userText("hi")}})
	var notFound *types.ResourceNotFoundException
	if status, _ := httpStatus(err); !errors.As(err, &notFound) || status != 404 || !strings.Contains(notFound.ErrorMessage(), claudeID) {
		t.Fatalf("unknown model: %v (status %d); the message must list the models", err, status)
	}

	_, err = client.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(claudeID), Messages: []types.Message{{
		Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberDocument{Value: types.DocumentBlock{
			Format: types.DocumentFormatPdf, Name: aws.String("report"), Source: &types.DocumentSourceMemberBytes{Value: []byte("%PDF-1.4")},
		}}},
	}}})
	var invalid *types.ValidationException
	if status, _ := httpStatus(err); !errors.As(err, &invalid) || status != 400 || !strings.Contains(invalid.ErrorMessage(), "messages[0].content[0].document") {
		t.Fatalf("document block: %v (status %d)", err, status)
	}

	status, hdr, b := j.do("POST", "/model/"+url.PathEscape(claudeID)+"/converse", adminKey, `{"messages":[{"role":"user","content":[{"text":`)
	if status != 400 || hdr.Get("X-Amzn-Errortype") != "ValidationException" || !strings.Contains(string(b), "not valid JSON") {
		t.Fatalf("malformed body: %d %v %s", status, hdr, b)
	}

	fault = fakeopenai.Fault{Status: 429, RetryAfter: "7", Message: "Rate limit reached for gpt-4o-mini"}
	_, err = client.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(claudeID), Messages: []types.Message{userText("hi")}})
	var throttled *types.ThrottlingException
	if status, hdr := httpStatus(err); !errors.As(err, &throttled) || status != 429 || hdr.Get("Retry-After") != "7" ||
		!strings.Contains(throttled.ErrorMessage(), "Rate limit reached") {
		t.Fatalf("upstream 429: %v", err)
	}
	_, err = client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String(claudeID), Messages: []types.Message{userText("hi")}})
	if !errors.As(err, &throttled) {
		t.Fatalf("upstream 429 before a stream: %v", err)
	}

	fault = fakeopenai.Fault{Status: 500}
	_, err = client.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(claudeID), Messages: []types.Message{userText("hi")}})
	var modelErr *types.ModelErrorException
	if status, _ := httpStatus(err); !errors.As(err, &modelErr) || status != 424 || !strings.Contains(modelErr.ErrorMessage(), "provider openai") {
		t.Fatalf("upstream 500: %v", err)
	}

	fault = fakeopenai.Fault{ErrorAfter: 2}
	out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String(claudeID), Messages: []types.Message{userText("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	s := readStream(t, out)
	var broken *types.ModelStreamErrorException
	if !errors.As(s.err, &broken) || strings.Contains(strings.Join(s.events, ","), "messageStop") || s.text != "Hello from " {
		t.Fatalf("mid-stream failure: %+v", s)
	}

	for _, r := range j.records(7) {
		if r.Surface != "bedrock" || r.Status < 400 {
			t.Fatalf("record %+v", r)
		}
	}
	if n := len(j.fake.Requests()); n != 4 {
		t.Fatalf("the upstream saw %d requests; only the 4 valid ones should reach it", n)
	}
}

// TestBedrockRequestMetadataRoutes checks that requestMetadata is routing
// metadata as well as tags, as the OpenAI surface's metadata object is.
func TestBedrockRequestMetadataRoutes(t *testing.T) {
	j, _, _ := pricedPair(t, "")
	body := `{"messages":[{"role":"user","content":[{"text":"hi"}]}],"requestMetadata":{"cost_tier":"economy","app":"faq"}}`
	for i := 0; i < 3; i++ {
		status, hdr, b := j.do("POST", "/model/chat/converse", adminKey, body)
		if status != 200 || hdr.Get("X-Junction-Deployment") != "cheap" || !strings.Contains(hdr.Get("X-Junction-Route-Reason"), "economy") {
			t.Fatalf("economy: %d deployment %q reason %q %s", status, hdr.Get("X-Junction-Deployment"), hdr.Get("X-Junction-Route-Reason"), b)
		}
	}
	status, hdr, b := j.do("POST", "/model/chat/converse", adminKey, `{"messages":[{"role":"user","content":[{"text":"hi"}]}],"requestMetadata":{"cost_tier":"free"}}`)
	if status != 400 || hdr.Get("X-Amzn-Errortype") != "ValidationException" || !strings.Contains(string(b), "requestMetadata: cost_tier") {
		t.Fatalf("bad cost tier: %d %s", status, b)
	}
	for _, r := range j.records(4) {
		if r.Status == 200 && (r.Surface != "bedrock" || r.Tags["app"] != "faq" || r.Tags["cost_tier"] != "economy") {
			t.Fatalf("requestMetadata not recorded as tags: %+v", r)
		}
	}
}
