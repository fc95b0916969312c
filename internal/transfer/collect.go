package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ferrydev/ferry/internal/proto"
)

// ErrNothingToSend is returned when the paths contain no regular files.
var ErrNothingToSend = errors.New("transfer: nothing to send: no regular files in the given paths")

// Collect expands files and folders into SourceFiles. A folder keeps its
// name and relative paths ("photos/2024/a.jpg"). Symbolic links inside
// folders, sockets and devices are skipped and reported in skipped; links
// given directly on the command line are followed.
func Collect(paths []string) (files []SourceFile, skipped []string, err error) {
	seen := map[string]string{}
	add := func(rel, local string, fi fs.FileInfo) error {
		rel = filepath.ToSlash(rel)
		if err := proto.ValidatePath(rel); err != nil {
			return fmt.Errorf("cannot send %q: %w", local, err)
		}
		key := proto.FoldPath(rel)
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("cannot send both %q and %q: they arrive under the same name %q", prev, local, rel)
		}
		seen[key] = local
		files = append(files, SourceFile{Path: rel, Local: local, Size: fi.Size(), Mtime: fi.ModTime()})
		return nil
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, err
		}
		base := filepath.Base(abs)
		if fi.Mode().IsRegular() {
			if err := add(base, p, fi); err != nil {
				return nil, nil, err
			}
			continue
		}
		if !fi.IsDir() {
			return nil, nil, fmt.Errorf("cannot send %q: not a regular file or folder", p)
		}
		if base == string(filepath.Separator) {
			return nil, nil, fmt.Errorf("cannot send the root folder")
		}
		err = filepath.WalkDir(abs, func(local string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(filepath.Dir(abs), local)
			if !d.Type().IsRegular() {
				skipped = append(skipped, local)
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return add(rel, local, info)
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if len(files) == 0 {
		return nil, skipped, ErrNothingToSend
	}
	return files, skipped, nil
}
