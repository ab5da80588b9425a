package sagemaker_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/sagemaker"
	"github.com/junctionhq/junction/internal/auth/awscreds"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/auth/sigv4"
)

// An SDK signing with an access key Junction issued is admitted, and its
// invocations are attributed to the Junction key the access key belongs
// to; a wrong secret or no signature at all is refused in AWS's shape and
// reaches no model server.
func TestSigV4(t *testing.T) {
	var key *keys.Key
	var akid, secret string
	e := newEnv(t, func(e *env) {
		ctx := context.Background()
		ks, err := keys.Open(ctx, e.db)
		if err != nil {
			t.Fatal(err)
		}
		if key, _, err = ks.Create(ctx, "search-app", map[string]string{"team": "search"}, false); err != nil {
			t.Fatal(err)
		}
		creds, err := awscreds.Open(ctx, e.db, filepath.Join(t.TempDir(), "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		c, s, err := creds.Create(ctx, key.ID)
		if err != nil {
			t.Fatal(err)
		}
		akid, secret = c.AccessKeyID, s
		e.h.Auth = api.NewAWSAuth(ks, creds, sagemaker.SigningName)
	})
	in := &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("echo"), Body: []byte("x")}

	out, err := e.newClient(akid, secret).InvokeEndpoint(context.Background(), in)
	if err != nil {
		t.Fatalf("signed with an issued key: %v", err)
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if rec := e.record(id); rec.KeyID != key.ID || rec.KeyName != "search-app" || rec.Tags["team"] != "search" {
		t.Errorf("ledger record %+v, want it attributed to key %s with its tags", rec, key.ID)
	}

	// A request's X-Junction-Tags cannot move it to another team or
	// project: the key's team stays, the free tags are added.
	out, err = e.newClient(akid, secret).InvokeEndpoint(context.Background(), in,
		sagemakerruntime.WithAPIOptions(smithyhttp.AddHeaderValue("X-Junction-Tags", "team=victim,project=secret,app=faq")))
	if err != nil {
		t.Fatalf("with X-Junction-Tags: %v", err)
	}
	id, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if rec := e.record(id); rec.Tags["team"] != "search" || rec.Tags["project"] != "" || rec.Tags["app"] != "faq" {
		t.Errorf("a request claiming team victim was recorded with tags %v, want team search, no project, app faq", rec.Tags)
	}

	for _, tc := range []struct {
		name   string
		client *sagemakerruntime.Client
		code   string
	}{
		{"wrong secret", e.newClient(akid, "not-the-secret-0000000000000000000000000"), sigv4.CodeInvalidSignature},
		{"unknown access key", e.newClient("JKAKUNKNOWN000000000", secret), sigv4.CodeUnrecognizedClient},
		{"unsigned", e.clientWith(aws.AnonymousCredentials{}), sigv4.CodeMissingToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.InvokeEndpoint(context.Background(), in)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("%v, want %s", err, tc.code)
			}
			if status, _ := statusOf(t, err); status != 403 {
				t.Errorf("status %d, want 403", status)
			}
		})
	}
	if n := len(e.ctrl.invocations()); n != 2 {
		t.Errorf("%d invocations reached the controller, want only the 2 signed ones", n)
	}
}
