package weed

import (
	"os/exec"
	"syscall"
)

// dieWithParent has weed killed if our process dies.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
