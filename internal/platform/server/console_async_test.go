package server_test

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/junctionhq/junction/internal/jobs/async"
)

// checkQueueInConsole signs in to the console as admin and checks that
// the Jobs page shows endpoint's async queue as the admin API does
// (want), then that a team key's Jobs page shows no queue.
func checkQueueInConsole(t *testing.T, j *junction, endpoint string, want async.Stats) {
	t.Helper()
	b := browser(t)
	b.do(chromedp.Navigate(j.url+"/ui/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#queues`)))
	row := `tr[data-queue="` + endpoint + `"] `
	total := want.Queued + want.Running + want.Succeeded + want.Failed
	for field, v := range map[string]string{
		"queued": fmt.Sprint(want.Queued), "running": fmt.Sprint(want.Running), "succeeded": fmt.Sprint(want.Succeeded),
		"failed": fmt.Sprint(want.Failed), "done": fmt.Sprintf("%d / %d", want.Succeeded+want.Failed, total),
		"notify-failed": fmt.Sprint(want.NotificationsFailed),
	} {
		if got := b.text(row + `[data-field="` + field + `"]`); got != v {
			t.Errorf("Jobs page: queue %s shows %s %q, the API says %q", endpoint, field, got, v)
		}
	}
	b.screenshot("jobs-async")

	_, team := j.teamKey("queue-watcher", "research", "")
	b.do(chromedp.Click(chromedp.CSS(`.who button`)),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), team),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#who`)),
		chromedp.Navigate(j.url+"/ui/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`main`)))
	if n := eval[int](b, `document.querySelectorAll('#queues').length`); n != 0 {
		t.Errorf("a team key's Jobs page shows the async queues")
	}
}
