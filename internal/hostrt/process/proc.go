package process

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

const (
	// groupPoll is how often a stopping process group is checked for
	// members.
	groupPoll = 20 * time.Millisecond
	// killWait bounds the wait for a process group to go after SIGKILL; a
	// process stuck in the kernel (a hung GPU driver call) can outlast it.
	killWait = 10 * time.Second
	// adoptedPoll is how often an adopted process, which is not our child
	// and so cannot be waited for, is checked for life.
	adoptedPoll = 100 * time.Millisecond
)

// proc is one model-server process: a child this runtime started, or one an
// earlier Junction started and this runtime adopted. It leads its own
// process group, so pid is also the group id.
type proc struct {
	pid        int
	startTicks uint64
	port       int
	adopted    bool
	started    time.Time

	// exited is closed when the leader has exited; reason, written before,
	// says how.
	exited chan struct{}
	reason string

	// stopPoll ends the liveness poller of an adopted process; pollDone is
	// closed when the poller has returned.
	stopPoll chan struct{}
	pollDone chan struct{}

	// readyAt is when the process first passed its readiness probe (zero
	// before). Only the supervisor touches it.
	readyAt time.Time
}

func (p *proc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// startChild starts cmd as a new process group and returns its proc. One
// goroutine waits for the child, so that it is reaped as soon as it exits;
// it returns when the child does.
func startChild(cmd *exec.Cmd, port int) (*proc, error) {
	cmd.SysProcAttr = ownGroup()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{pid: cmd.Process.Pid, port: port, started: time.Now(), exited: make(chan struct{})}
	// Not yet waited for, the child is in /proc even if it already died.
	if st, err := readProcStat(p.pid); err == nil {
		p.startTicks = st.startTicks
	}
	go func() {
		err := cmd.Wait()
		p.reason = describeExit(cmd.ProcessState, err)
		close(p.exited)
	}()
	return p, nil
}

// adoptProcess watches a process an earlier Junction started. Its liveness
// poller runs until the process dies or release is called.
func adoptProcess(pid int, startTicks uint64, port int, started time.Time) *proc {
	p := &proc{pid: pid, startTicks: startTicks, port: port, adopted: true, started: started,
		exited: make(chan struct{}), stopPoll: make(chan struct{}), pollDone: make(chan struct{}), readyAt: time.Now()}
	go func() {
		defer close(p.pollDone)
		t := time.NewTicker(adoptedPoll)
		defer t.Stop()
		for {
			if !processAlive(p.pid, p.startTicks) {
				p.reason = fmt.Sprintf("process %d exited", p.pid)
				close(p.exited)
				return
			}
			select {
			case <-p.stopPoll:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// release stops watching an adopted process; it is a no-op for a child,
// whose waiting goroutine ends when the child does.
func (p *proc) release() {
	if p.stopPoll == nil {
		return
	}
	select {
	case <-p.stopPoll:
	default:
		close(p.stopPoll)
	}
	<-p.pollDone
}

// hasExited reports whether the leader has exited.
func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// gone reports whether the leader has exited and nothing else in its
// group runs.
func (p *proc) gone() bool { return p.hasExited() && !groupAlive(p.pid) }

// terminate stops the whole process group: SIGTERM, up to grace for it to
// exit, then SIGKILL. It returns once the group is gone, or with an error
// if it outlasts SIGKILL by killWait.
func (p *proc) terminate(grace time.Duration) error {
	if p.gone() {
		return nil
	}
	if err := signalGroup(p.pid, sigTERM); err != nil {
		return fmt.Errorf("SIGTERM process group %d: %w", p.pid, err)
	}
	if p.waitGone(grace) {
		return nil
	}
	if err := signalGroup(p.pid, sigKILL); err != nil {
		return fmt.Errorf("SIGKILL process group %d: %w", p.pid, err)
	}
	if p.waitGone(killWait) {
		return nil
	}
	return fmt.Errorf("process group %d still running %v after SIGKILL", p.pid, killWait)
}

// waitGone waits up to d for the process group to go.
func (p *proc) waitGone(d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	exited := p.exited
	for {
		select {
		case <-exited:
			exited = nil // closed: from now on only the ticker wakes us
		case <-tick.C:
		case <-deadline.C:
			return p.gone()
		}
		if p.gone() {
			return true
		}
	}
}

// terminateGroup stops a leftover process group whose leader is not ours to
// wait for: SIGTERM, grace, SIGKILL. alive reports whether anything of it
// still runs.
func terminateGroup(pgid int, grace time.Duration, alive func() bool) error {
	if !alive() {
		return nil
	}
	if err := signalGroup(pgid, sigTERM); err != nil {
		return fmt.Errorf("SIGTERM process group %d: %w", pgid, err)
	}
	if pollUntil(func() bool { return !alive() }, grace) {
		return nil
	}
	if err := signalGroup(pgid, sigKILL); err != nil {
		return fmt.Errorf("SIGKILL process group %d: %w", pgid, err)
	}
	if pollUntil(func() bool { return !alive() }, killWait) {
		return nil
	}
	return fmt.Errorf("process group %d still running %v after SIGKILL", pgid, killWait)
}

// pollUntil checks cond every groupPoll for up to d.
func pollUntil(cond func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// describeExit says how a child ended, in the words Status.LastError uses.
func describeExit(ps *os.ProcessState, err error) string {
	if ps == nil {
		return fmt.Sprintf("wait failed: %v", err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}

// freePort asks the kernel for a free loopback port. The port is free when
// chosen, not reserved: the server binds it a moment later.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("pick a free port: not a TCP address")
	}
	return a.Port, nil
}
