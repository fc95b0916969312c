package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/ferrydev/ferry/internal/proto"
)

// ErrUnsafePath reports a path the receiver refuses to write.
var ErrUnsafePath = errors.New("transfer: unsafe path")

// Windows device names are refused on every platform: a folder received on
// Linux is often copied to Windows later.
var deviceNames = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
}

// PathDeviceName is PathProblem's reason for a Windows device name.
const PathDeviceName = "device name"

// PathProblem says why a receiver refuses the path p on every platform
// (the manifest rules plus device names), or "": the same reasons as the
// TypeScript receiver (testdata/vectors/paths.json).
func PathProblem(p string) string {
	if why := proto.PathProblem(p); why != "" {
		return why
	}
	for _, el := range strings.Split(p, "/") {
		base := strings.ToUpper(el)
		if i := strings.IndexByte(base, '.'); i >= 0 {
			base = base[:i]
		}
		if deviceNames[strings.TrimRight(base, " ")] {
			return PathDeviceName
		}
	}
	return ""
}

// CheckPath applies the manifest rules plus platform rules to a path the
// sender proposed.
func CheckPath(p string) error {
	if why := PathProblem(p); why != "" {
		// %q: the name may hold exactly what makes it unsafe to print.
		return fmt.Errorf("%w: %q: %s", ErrUnsafePath, p, why)
	}
	if runtime.GOOS == "windows" {
		for _, el := range strings.Split(p, "/") {
			if strings.ContainsAny(el, `<>:"|?*`) || strings.HasSuffix(el, ".") || strings.HasSuffix(el, " ") {
				return fmt.Errorf("%w: %q is not a valid Windows file name", ErrUnsafePath, p)
			}
		}
	}
	return nil
}

// checkNoSymlinks refuses to write through a symlink that already exists
// in the target folder: os.Root would stop it escaping the folder, but a
// link inside the folder is still not what the sender meant.
func checkNoSymlinks(root *os.Root, p string) error {
	dir := ""
	for _, el := range strings.Split(p, "/") {
		dir = path.Join(dir, el)
		fi, err := root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %q: %s is a symbolic link", ErrUnsafePath, p, dir)
		}
	}
	return nil
}
