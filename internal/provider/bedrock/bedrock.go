// Package bedrock is the outbound adapter for Amazon Bedrock's Converse and
// ConverseStream APIs. It translates canonical llm requests into Converse
// input, calls Bedrock through the AWS SDK's bedrockruntime client (which
// signs requests with SigV4 and decodes the binary event stream), and
// translates responses, streams and SDK errors back into llm types and
// *llm.Error.
//
// It is not for InvokeModel's model-native bodies, and it is not an inbound
// surface: serving the Bedrock API to clients lives elsewhere.
package bedrock

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Config configures a Provider.
type Config struct {
	// Name is the provider's name from the configuration, reported in
	// errors as llm.Error.Provider; empty means "bedrock".
	Name string
	// Region is the AWS region, e.g. us-east-1. Empty takes the region from
	// AWS_REGION or the shared config files, through the SDK's default
	// chain; New fails if none is found.
	Region string
	// Endpoint overrides the runtime endpoint the SDK would resolve for the
	// region, e.g. a VPC interface endpoint; it must be an absolute URL.
	Endpoint string
	// HTTPClient sends the requests; nil means upstream.NewClient(0),
	// trusting the CA bundle of the AWS configuration if it names one.
	HTTPClient *http.Client
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	// The first two are set together or not at all; when unset, the SDK's
	// default credential chain is used (environment, shared files, web
	// identity, container and instance roles).
	AccessKeyID, SecretAccessKey, SessionToken string
}

// Provider is an llm.Provider that calls Bedrock's Converse and
// ConverseStream APIs. It is safe for concurrent use.
type Provider struct {
	name   string
	client *bedrockruntime.Client
}

var _ llm.Provider = (*Provider)(nil)

// New returns a Provider for cfg. It loads the AWS configuration through
// the SDK's default chain, which may read the shared config files but does
// not call AWS; credentials from the chain are resolved on first use. The
// SDK's own retries are turned off: Junction has its own retry policy.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	name := cfg.Name
	if name == "" {
		name = "bedrock"
	}
	// The HTTP client goes to the service client, not to LoadDefaultConfig,
	// which refuses a plain *http.Client when a CA bundle is configured.
	opts := []func(*config.LoadOptions) error{
		config.WithRetryMaxAttempts(1),
		config.WithLogger(sdkLogger{provider: name}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	switch {
	case cfg.AccessKeyID != "" && cfg.SecretAccessKey != "":
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	case cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" || cfg.SessionToken != "":
		return nil, fmt.Errorf("bedrock provider %q: access key id and secret access key must be set together", name)
	}
	if cfg.Endpoint != "" {
		if u, err := url.Parse(cfg.Endpoint); err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("bedrock provider %q: endpoint %q is not an absolute URL", name, cfg.Endpoint)
		}
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("bedrock provider %q: load AWS configuration: %w", name, err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("bedrock provider %q: no region: set it in the configuration, AWS_REGION or the shared AWS config", name)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = withCABundle(upstream.NewClient(0), awsCfg.HTTPClient)
	}
	client := bedrockruntime.NewFromConfig(awsCfg, func(o *bedrockruntime.Options) {
		o.HTTPClient = ownBody{hc}
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Provider{name: name, client: client}, nil
}

// Chat sends req to Converse and waits for the complete response.
func (p *Provider) Chat(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	c, err := translate(req)
	if err != nil {
		return nil, err
	}
	out, err := p.client.Converse(ctx, &bedrockruntime.ConverseInput{
		ModelId:         aws.String(req.Model),
		System:          c.system,
		Messages:        c.messages,
		InferenceConfig: c.inference,
		ToolConfig:      c.tools,
	})
	if err != nil {
		return nil, apiError(ctx, p.name, err)
	}
	resp, err := response(out)
	if err != nil {
		return nil, upstream.Garbage(p.name, err)
	}
	resp.ID = requestID(out.ResultMetadata)
	resp.Model = req.Model
	return resp, nil
}

// ChatStream sends req to ConverseStream and returns the response as a
// stream of events. A request Bedrock refuses fails here; one that fails
// after Bedrock accepted it fails from the stream's Recv.
func (p *Provider) ChatStream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	c, err := translate(req)
	if err != nil {
		return nil, err
	}
	out, err := p.client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
		ModelId:         aws.String(req.Model),
		System:          c.system,
		Messages:        c.messages,
		InferenceConfig: c.inference,
		ToolConfig:      c.tools,
	})
	if err != nil {
		return nil, apiError(ctx, p.name, err)
	}
	es := out.GetStream()
	if es == nil {
		return nil, upstream.Garbage(p.name, errors.New("ConverseStream returned no event stream"))
	}
	return newStream(ctx, p.name, req.Model, requestID(out.ResultMetadata), es), nil
}

// ownBody is the HTTP client as the SDK sees it. It gives the transport a
// request body of its own: the SDK closes the body it built as soon as the
// response headers arrive, and if the transport has not yet made its last
// read of it (it reads once more after the final byte), the write fails
// and the transport closes the connection, cutting a ConverseStream
// response short. The SDK holds the body in memory already, so the copy
// is cheap next to a model call.
type ownBody struct{ c *http.Client }

// Do sends req with a copy of its body.
func (o ownBody) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return o.c.Do(req)
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.ContentLength = int64(len(b))
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return o.c.Do(r)
}

// withCABundle returns hc trusting the CA bundle the AWS configuration
// names (AWS_CA_BUNDLE or ca_bundle), if it names one: the SDK loads the
// bundle into the client it would have used, sdk, and this copies its
// roots into a clone of hc's transport.
func withCABundle(hc *http.Client, sdk aws.HTTPClient) *http.Client {
	b, ok := sdk.(*awshttp.BuildableClient)
	if !ok {
		return hc
	}
	bt := b.GetTransport()
	t, ok := hc.Transport.(*http.Transport)
	if bt == nil || bt.TLSClientConfig == nil || bt.TLSClientConfig.RootCAs == nil || !ok {
		return hc
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.RootCAs = bt.TLSClientConfig.RootCAs
	c := *hc
	c.Transport = t
	return &c
}

// sdkLogger sends the SDK's log lines, such as a warning that a response
// body could not be drained, to slog instead of the SDK's own stderr logger.
type sdkLogger struct{ provider string }

// Logf implements the SDK's logging.Logger.
func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	slog.Log(context.Background(), level, fmt.Sprintf(format, v...), "provider", l.provider, "source", "aws-sdk")
}

// requestID returns the x-amzn-RequestId of a response. Bedrock gives a
// Converse response no id of its own, and the request id is what AWS
// support asks for.
func requestID(md middleware.Metadata) string {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}
