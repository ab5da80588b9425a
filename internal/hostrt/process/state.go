package process

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// Names inside an instance's directory.
const (
	stateName = "instance.json"
	logName   = "output.log"
)

// savedState is an instance's state file: enough for a later Junction to
// find the process again, tell it from an unrelated process that reused its
// pid, and decide whether to adopt it.
type savedState struct {
	Spec hostrt.Spec `json:"spec"`
	// Path is the executable Command resolved to.
	Path string `json:"path"`
	PID  int    `json:"pid"`
	// StartTicks is the process's start time, /proc/<pid>/stat field 22.
	StartTicks uint64 `json:"start_ticks"`
	Port       int    `json:"port"`
	// JunctionPID is the Junction process that supervises the instance.
	JunctionPID int       `json:"junction_pid"`
	Started     time.Time `json:"started"`
	Restarts    int       `json:"restarts"`
}

// writeState replaces dir's state file atomically: a reader sees the old
// file or the new one, never a part.
func writeState(dir string, s savedState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, stateName+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errorsFirst(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateName)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// readState reads dir's state file; a missing file reports an error that
// matches fs.ErrNotExist.
func readState(dir string) (savedState, error) {
	var s savedState
	b, err := os.ReadFile(filepath.Join(dir, stateName))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, stateName), err)
	}
	return s, nil
}

func errorsFirst(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
