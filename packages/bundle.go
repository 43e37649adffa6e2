package packages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// MaxBundleSize limits a bundle's uncompressed contents.
const MaxBundleSize = 64 << 20

// Bundle returns the deterministic .tgz of a package's files and its
// digest ("sha256:HEX"): entries sorted by path, times zeroed, modes fixed,
// no owner names.
func Bundle(files map[string][]byte) (data []byte, digest string, err error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, p := range paths {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     p,
			Mode:     0o644,
			Size:     int64(len(files[p])),
			ModTime:  time.Unix(0, 0).UTC(),
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", fmt.Errorf("bundle %s: %w", p, err)
		}
		if _, err := tw.Write(files[p]); err != nil {
			return nil, "", fmt.Errorf("bundle %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), Digest(buf.Bytes()), nil
}

// Digest returns "sha256:HEX" of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ReadBundle reads a bundle into memory, refusing anything that is not a
// plain relative file: absolute paths, "..", links, devices, duplicate
// entries, oversized entries or totals, and bad gzip or tar data.
func ReadBundle(data []byte) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("bundle: not a gzip file: %w", err)
	}
	// Every decompressed byte counts — headers, padding and whatever
	// follows the tar's end — not only the entries' announced sizes: 8 GiB
	// of zeros after the end compress to a few MB.
	unpacked := &io.LimitedReader{R: zr, N: maxUnpacked + 1}
	tr := tar.NewReader(unpacked)
	files := map[string][]byte{}
	entries := 0
	total := int64(0)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, unpackedErr(unpacked, fmt.Errorf("bundle: %w", err))
		}
		name := hdr.Name
		if entries++; entries > MaxFiles {
			return nil, fmt.Errorf("bundle: more than %d entries (directories count)", MaxFiles)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("bundle: entry %q is not a regular file (type %q)", name, hdr.Typeflag)
		}
		if err := checkEntryName(name); err != nil {
			return nil, err
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("bundle: entry %q appears twice", name)
		}
		if hdr.Size < 0 || hdr.Size > MaxFileSize {
			return nil, fmt.Errorf("bundle: entry %q is %d bytes, the limit is %d", name, hdr.Size, MaxFileSize)
		}
		total += hdr.Size
		if total > MaxBundleSize {
			return nil, fmt.Errorf("bundle: contents exceed %d bytes", MaxBundleSize)
		}
		b, err := io.ReadAll(io.LimitReader(tr, MaxFileSize+1))
		if err != nil {
			return nil, unpackedErr(unpacked, fmt.Errorf("bundle: entry %q: %w", name, err))
		}
		if int64(len(b)) != hdr.Size {
			return nil, fmt.Errorf("bundle: entry %q: size mismatch", name)
		}
		files[name] = b
	}
	// The gzip stream's checksum is verified only at its end.
	if _, err := io.Copy(io.Discard, unpacked); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if unpacked.N <= 0 {
		return nil, errUnpacked
	}
	if _, ok := files[ManifestFile]; !ok {
		return nil, fmt.Errorf("bundle: no %s", ManifestFile)
	}
	return files, nil
}

// maxUnpacked bounds a bundle's decompressed stream: the contents' limit
// plus room for a tar header and padding per entry.
const maxUnpacked = MaxBundleSize + MaxFiles*2048

var errUnpacked = fmt.Errorf("bundle: decompresses to more than %d bytes", maxUnpacked)

// unpackedErr is errUnpacked once the decompression limit was reached
// (the tar reader then sees a truncated stream), else err.
func unpackedErr(r *io.LimitedReader, err error) error {
	if r.N <= 0 {
		return errUnpacked
	}
	return err
}

func checkEntryName(name string) error {
	switch {
	case name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || strings.ContainsRune(name, 0):
		return fmt.Errorf("bundle: entry %q: not a relative slash path", name)
	case path.Clean(name) != name || name == "." || strings.HasPrefix(name, "../") || name == ".." || strings.Contains(name, "/../"):
		return fmt.Errorf("bundle: entry %q: not a clean path inside the package", name)
	case len(name) > 1 && name[1] == ':':
		return fmt.Errorf("bundle: entry %q: not a relative path", name)
	}
	return nil
}
