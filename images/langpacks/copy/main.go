// Command langpack is the entry point of readocr's language-pack images: it copies the pack's
// files (/langpacks: the models, their licences) into a directory the service reads them from,
// a Kubernetes emptyDir or a Docker volume mounted at /target. The images are FROM scratch:
// this static binary is all they run, so they need no shell and no cp.
//
//	docker run --rm -v readocr-langs:/target ghcr.io/readocr/langpack-deu:4.1.0
//
// Each file is written under a hidden temporary name and renamed into place, so the service
// never sees half a model; a file already there with the same bytes is left alone (several
// packs copy into one directory, and an init container may run again).
package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	from := flag.String("from", "/langpacks", "the pack's files")
	to := flag.String("to", "/target", "where the service reads packs (its --langpacks directory)")
	flag.Parse()
	if err := copyTree(*from, *to, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "langpack:", err)
		os.Exit(1)
	}
}

// copyTree copies every regular file under from to the same place under to.
func copyTree(from, to string, log io.Writer) error {
	if fi, err := os.Stat(to); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s must be a directory (mount the volume the service reads there): %v", to, err)
	}
	n := 0
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		same, err := sameContent(path, dst)
		if err != nil {
			return err
		}
		if same {
			fmt.Fprintf(log, "kept %s (already there)\n", rel)
			return nil
		}
		size, err := copyFile(path, dst)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		n++
		fmt.Fprintf(log, "copied %s (%d bytes)\n", rel, size)
		return nil
	})
	if err == nil && n == 0 {
		fmt.Fprintf(log, "nothing to copy: every file of %s is in %s\n", from, to)
	}
	return err
}

// copyFile writes src to a hidden temporary file beside dst, then renames it to dst.
func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-"+strconv.Itoa(os.Getpid()))
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o444)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return n, err
}

// sameContent reports whether b exists with a's bytes.
func sameContent(a, b string) (bool, error) {
	fb, err := os.Stat(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fa, err := os.Stat(a)
	if err != nil || fa.Size() != fb.Size() {
		return false, err
	}
	ha, err := hash(a)
	if err != nil {
		return false, err
	}
	hb, err := hash(b)
	return bytes.Equal(ha, hb), err
}

func hash(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
