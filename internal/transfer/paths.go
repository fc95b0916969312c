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

// CheckPath applies the manifest rules plus platform rules to a path the
// sender proposed.
func CheckPath(p string) error {
	if why := proto.PathProblem(p); why != "" {
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
