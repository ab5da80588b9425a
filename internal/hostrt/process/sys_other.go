//go:build !unix

package process

import (
	"errors"
	"os"
	"syscall"
)

var errUnsupported = errors.New("process runtime: needs Linux")

func supported() error                               { return errUnsupported }
func ownGroup() *syscall.SysProcAttr                 { return &syscall.SysProcAttr{} }
func signalGroup(pgid int, sig syscall.Signal) error { return errUnsupported }
func groupExists(pgid int) bool                      { return false }
func lockFile(f *os.File) error                      { return errUnsupported }

var (
	sigTERM = syscall.SIGTERM
	sigKILL = syscall.SIGKILL
)
