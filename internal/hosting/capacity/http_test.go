package capacity

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The invoke functions call Junction as its clients do: the SageMaker
// runtime path or the gateway's chat completions, with a bearer key and
// the bench tag; anything but a 2xx is a failure that says what came back.
func TestCapacityJunctionInvoke(t *testing.T) {
	type seen struct {
		path, auth, tags, variant, contentType, body string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("X-Junction-Tags"),
			r.Header.Get("X-Amzn-SageMaker-Target-Variant"), r.Header.Get("Content-Type"), string(b)}
		if strings.Contains(string(b), "fail") {
			w.Header().Set("X-Amzn-ErrorType", "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/")
			w.WriteHeader(http.StatusFailedDependency)
			io.WriteString(w, `{"message": "the container answered 500"}`)
			return
		}
		io.WriteString(w, `{"predictions": []}`)
	}))
	defer srv.Close()
	j := &Junction{URL: srv.URL + "/", Key: "jk-test", Client: HTTPClient(4, 5*time.Second)}

	inv := j.Invocations("intent", "primary", "text/csv")
	if err := inv(t.Context(), []byte("a,b")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != (seen{"/endpoints/intent/invocations", "Bearer jk-test", "bench=capacity", "primary", "text/csv", "a,b"}) {
		t.Errorf("invocation: %+v", s)
	}
	err := inv(t.Context(), []byte("fail"))
	<-got
	if err == nil || err.Error() != `HTTP 424: ModelError: {"message": "the container answered 500"}` {
		t.Errorf("a ModelError: %v", err)
	}

	chat := j.ChatCompletions()
	if err := chat(t.Context(), []byte(`{"model": "demo-lm"}`)); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != (seen{"/v1/chat/completions", "Bearer jk-test", "bench=capacity", "", "application/json", `{"model": "demo-lm"}`}) {
		t.Errorf("chat: %+v", s)
	}
}
