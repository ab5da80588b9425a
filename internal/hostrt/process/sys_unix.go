//go:build unix

package process

import (
	"errors"
	"os"
	"syscall"
)

// supported reports whether this system can run the process runtime: it
// reads process start times and group members from /proc.
func supported() error {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return errors.New("process runtime: needs Linux's /proc")
	}
	return nil
}

// ownGroup makes the child the leader of a new process group, so that a
// signal to the group reaches everything the server starts.
func ownGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to every process in the group pgid. A group that
// is already gone is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return errors.New("process runtime: refusing to signal process group <= 1")
	}
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// groupExists reports whether any process, zombies included, is in the
// group pgid.
func groupExists(pgid int) bool {
	return pgid > 1 && !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// lockFile takes an exclusive lock on f without waiting.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

var (
	sigTERM = syscall.SIGTERM
	sigKILL = syscall.SIGKILL
)
