package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/openai/openai-go/v3"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// The Jobs page shows batch jobs as the jobs API does, with their
// progress; an admin cancels a running job from it, and a team's key
// sees its own team's jobs only.
func TestConsoleJobsInBrowser(t *testing.T) {
	b := browser(t)
	release := make(chan struct{})
	fake := &fakeopenai.Server{PromptTokens: 100, CompletionTokens: 50, Fault: func(r *fakeopenai.Request) fakeopenai.Fault {
		if bytes.Contains(r.Raw, []byte("hold")) {
			<-release
		}
		return fakeopenai.Fault{}
	}}
	defer close(release)
	j := start(t, fake, batchConfig)
	_, research := j.teamKey("researcher", "research", "")
	_, ads := j.teamKey("ads-batch", "ads", "")
	ctx := context.Background()
	run := func(key, input string) string {
		client := j.sdk(key)
		f := uploadBatch(t, client, input)
		bt, err := client.Batches.New(ctx, openai.BatchNewParams{InputFileID: f.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
		if err != nil {
			t.Fatal(err)
		}
		return bt.ID
	}
	done := run(research, chatLines(4, "priced"))
	if got := waitBatch(t, j.sdk(research), done, 30*time.Second); got.Status != openai.BatchStatusCompleted {
		t.Fatalf("batch %s: %s", done, got.Status)
	}
	var held strings.Builder
	for i := range 3 {
		fmt.Fprintf(&held, `{"custom_id":"h-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"priced","messages":[{"role":"user","content":"hold %d"}]}}`+"\n", i, i)
	}
	running := run(ads, held.String())
	adsClient := j.sdk(ads)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		bt, err := adsClient.Batches.Get(ctx, running)
		if err != nil {
			t.Fatal(err)
		}
		if bt.Status == openai.BatchStatusInProgress {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("held batch is %s", bt.Status)
		}
	}

	b.do(chromedp.Navigate(j.url+"/ui/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#jobs`)))
	if got := b.text(`tr[data-job="` + done + `"] [data-field="done"]`); got != "4 / 4" {
		t.Errorf("finished job shows %q records done, want 4 / 4", got)
	}
	if got := b.text(`tr[data-job="` + done + `"] [data-field="status"]`); got != "completed" {
		t.Errorf("finished job shows status %q", got)
	}
	if got := b.text(`tr[data-job="` + running + `"] [data-field="status"]`); got != "in_progress" {
		t.Errorf("held job shows status %q", got)
	}
	b.screenshot("jobs")
	b.do(chromedp.Click(chromedp.CSS(`tr[data-job="`+running+`"] button.danger`)),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-job="`+running+`"] button.danger`)))
	bt, err := adsClient.Batches.Get(ctx, running)
	if err != nil {
		t.Fatal(err)
	}
	if bt.Status != openai.BatchStatusCancelling && bt.Status != openai.BatchStatusCancelled {
		t.Errorf("job cancelled from the page is %s in the API", bt.Status)
	}

	// The research team's key sees its job and not the ads team's.
	b.do(chromedp.Click(chromedp.CSS(`.who button`)),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), research),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#who`)),
		chromedp.Navigate(j.url+"/ui/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`#jobs`)))
	ids := eval[[]string](b, `[...document.querySelectorAll('#jobs tr[data-job]')].map(r => r.dataset.job)`)
	if len(ids) != 1 || ids[0] != done {
		t.Errorf("team research sees jobs %v, want only %s", ids, done)
	}
	if n := eval[int](b, `document.querySelectorAll('#jobs button').length`); n != 0 {
		t.Errorf("a team key is offered %d cancel buttons", n)
	}
}
