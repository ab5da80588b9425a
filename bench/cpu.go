package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat CPU times. It
// is 100 on every mainstream kernel.
const clockTick = 10 * time.Millisecond

// processCPU returns the user plus system CPU time a process has used, from
// /proc (pid 0 is this process). ok is false where there is no /proc.
func processCPU(pid int) (cpu time.Duration, ok bool) {
	user, sys, ok := processTimes(pid)
	return user + sys, ok
}

// processTimes returns the user and the system (kernel) CPU time a
// process has used, from /proc (pid 0 is this process).
func processTimes(pid int) (user, sys time.Duration, ok bool) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	// The command name, in parentheses, may hold spaces; the fields
	// after it start with the state (field 3). utime and stime are
	// fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return time.Duration(utime) * clockTick, time.Duration(stime) * clockTick, true
}
