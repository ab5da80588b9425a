package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// procStat is what the runtime reads from /proc/<pid>/stat.
type procStat struct {
	state byte // R, S, D, Z (zombie), X (dead), ...
	pgrp  int
	// startTicks is field 22, the time the process started in clock ticks
	// after boot. A pid alone can be reused by an unrelated process; a pid
	// with its start time cannot.
	startTicks uint64
}

// readProcStat parses /proc/<pid>/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// parseProcStat parses the text of a /proc/<pid>/stat file. The command
// name in field 2 is in parentheses and may itself hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: pgrp: %w", err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: starttime: %w", err)
	}
	return procStat{state: f[0][0], pgrp: pgrp, startTicks: start}, nil
}

func (s procStat) running() bool { return s.state != 'Z' && s.state != 'X' }

// processAlive reports whether pid is running (not a zombie) and is the
// process that started at startTicks.
func processAlive(pid int, startTicks uint64) bool {
	if pid <= 1 {
		return false
	}
	st, err := readProcStat(pid)
	return err == nil && st.running() && st.startTicks == startTicks
}

// pidExists reports whether any process, of any age or state, has pid.
func pidExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// groupAlive reports whether a process in group pgid is still running.
// Zombies do not count: an orphaned grandchild is reaped by whichever
// process adopted it, which may be slow or never happen in a container.
func groupAlive(pgid int) bool {
	if !groupExists(pgid) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil && st.pgrp == pgid && st.running() {
			return true
		}
	}
	return false
}
