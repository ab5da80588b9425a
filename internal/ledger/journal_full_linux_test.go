package ledger

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// fullDiskChild names the journal directory when this test binary runs
// as TestJournalOnAFullDiskFailsAppendsNotTheProcess's child.
const fullDiskChild = "JUNCTION_TEST_JOURNAL_FULL_DISK"

// fullDiskLimit is the child's largest file: past three of the journal's
// growth steps, short of the fourth, so that a store into the mapping
// beyond it would meet a page with no block behind it.
const fullDiskLimit = 3*journalGrowBytes + journalGrowBytes/2

// TestJournalOnAFullDiskFailsAppendsNotTheProcess runs the journal in a
// child process whose files may not grow past fullDiskLimit (the kernel
// answers a write, or an allocation, past it as it answers a full disk:
// with an error). The appends that find no room must fail as errors, not
// kill the process with a SIGBUS from a store into an unbacked page of
// the mapping, and must leave the journal whole: a replay records each
// record that was appended once, and reports no torn line.
func TestJournalOnAFullDiskFailsAppendsNotTheProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalFullDiskChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fullDiskChild+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the journal's process died on a full disk (%v):\n%s", err, out)
	}
	var ok, failed int
	if _, err := fmt.Sscanf(lastLine(string(out), "appended "), "appended %d, failed %d", &ok, &failed); err != nil {
		t.Fatalf("child said: %s", out)
	}
	if ok == 0 || failed == 0 {
		t.Fatalf("appended %d, failed %d: the limit was never met", ok, failed)
	}
	var log bytes.Buffer
	db := openDB(t, storetest.Backends[0])
	w, err := NewWriter(context.Background(), db, Options{JournalDir: dir, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.Close(context.Background())
	if rows, _ := countUsage(t, db); rows != ok {
		t.Fatalf("the replay recorded %d rows; %d appends succeeded", rows, ok)
	}
	if strings.Contains(log.String(), "torn") {
		t.Fatalf("a journal whose failed appends left nothing reported torn lines:\n%s", log.String())
	}
}

// TestJournalFullDiskChild is the child of
// TestJournalOnAFullDiskFailsAppendsNotTheProcess; run alone it skips.
func TestJournalFullDiskChild(t *testing.T) {
	dir := os.Getenv(fullDiskChild)
	if dir == "" {
		t.Skip("the child of TestJournalOnAFullDiskFailsAppendsNotTheProcess")
	}
	// Past the limit the kernel also sends SIGXFSZ, which would end the
	// process before the error could be seen.
	signal.Ignore(syscall.SIGXFSZ)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: fullDiskLimit, Max: fullDiskLimit}); err != nil {
		t.Fatal(err)
	}
	j, err := openJournal(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := rec("", "m", map[string]string{"team": "a"}, f(0.5), 200)
	ok, failed := 0, 0
	for i := 0; failed < 20 && i < 100000; i++ {
		r.RequestID = fmt.Sprint("d", i)
		if _, err := j.append(&r); err != nil {
			failed++
			continue
		}
		ok++
	}
	j.close()
	fmt.Printf("appended %d, failed %d\n", ok, failed)
}

// lastLine returns the last line of s that starts with prefix.
func lastLine(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i]
		}
	}
	return ""
}
