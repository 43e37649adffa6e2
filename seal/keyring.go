package seal

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeyLen is the length of a key: XChaCha20-Poly1305 takes 32 bytes.
const KeyLen = chacha20poly1305.KeySize

// maxKeyID bounds a key id; ids are looked up in every sealed value.
const maxKeyID = 32

// maxKeyringFile bounds what LoadKeyring reads.
const maxKeyringFile = 1 << 20

// Keyring holds the keys values are sealed and opened with. The first key
// seals; every key opens. A Keyring is safe for concurrent use; one loaded
// from a file can Reload it.
type Keyring struct {
	path string // the file it was loaded from, if any
	keys atomic.Pointer[keys]
}

// keys is one version of a keyring's contents.
type keys struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// ParseKeyring reads a keyring in the file format: one key per line as
// ID:BASE64 (32 bytes in standard base64, padded or not), blank lines and
// lines starting with # ignored. name (the file's path) is only used in
// errors, which name the line but never show a key.
func ParseKeyring(name string, data []byte) (*Keyring, error) {
	k, err := parse(name, data)
	if err != nil {
		return nil, err
	}
	r := &Keyring{}
	r.keys.Store(k)
	return r, nil
}

func parse(name string, data []byte) (*keys, error) {
	r := &keys{aeads: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxKeyringFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want ID:BASE64", name, n)
		}
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if _, dup := r.aeads[id]; dup {
			return nil, fmt.Errorf("%s:%d: key id %q appears twice", name, n, id)
		}
		key, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
		if err != nil || len(key) != KeyLen {
			return nil, fmt.Errorf("%s:%d: key %q: want %d bytes in base64", name, n, id, KeyLen)
		}
		aead, err := chacha20poly1305.NewX(key)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: key %q: %w", name, n, id, err)
		}
		r.ids = append(r.ids, id)
		r.aeads[id] = aead
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(r.ids) == 0 {
		return nil, fmt.Errorf("%s: no keys (want lines of ID:BASE64; runner store keygen --keys %s adds one)", name, name)
	}
	return r, nil
}

// checkID accepts ids of letters, digits, '.', '_' and '-'.
func checkID(id string) error {
	if id == "" || len(id) > maxKeyID {
		return fmt.Errorf("key id %q: want 1 to %d characters", id, maxKeyID)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("key id %q: only letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

// LoadKeyring reads the keyring file at path. It refuses a file that
// others than its owner may read or write: it holds the keys to every
// value of the store.
func LoadKeyring(path string) (*Keyring, error) {
	k, err := load(path)
	if err != nil {
		return nil, err
	}
	r := &Keyring{path: path}
	r.keys.Store(k)
	return r, nil
}

// Reload reads the keyring's file again (see LoadKeyring), so that a key
// added there seals from now on. On an error the keyring is unchanged.
func (r *Keyring) Reload() error {
	if r.path == "" {
		return errors.New("keyring: not loaded from a file")
	}
	k, err := load(r.path)
	if err != nil {
		return err
	}
	r.keys.Store(k)
	return nil
}

// Path is the file the keyring was loaded from ("" if parsed).
func (r *Keyring) Path() string { return r.path }

func load(path string) (*keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keyring %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keyring %s: mode %04o lets others read it; chmod 600 %s", path, perm, path)
	}
	data, err := readAtMost(f, maxKeyringFile)
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return parse(path, data)
}

func readAtMost(f *os.File, n int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > n {
		return nil, fmt.Errorf("longer than %d bytes", n)
	}
	return data, nil
}

// LoadOrCreate loads the keyring at path, or, if there is no file there,
// creates one (mode 0600, its directory 0700) holding a new key. created
// reports which.
func LoadOrCreate(path string) (r *Keyring, created bool, err error) {
	r, err = LoadKeyring(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return r, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("keyring: %w", err)
	}
	line, _ := newKeyLine()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use that one.
		r, err = LoadKeyring(path)
		return r, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("keyring: %w", err)
	}
	_, werr := f.WriteString("# modrun keyring: ID:BASE64 per line; the first seals, all open. Keep it secret.\n" + line + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("keyring %s: %w", path, err)
	}
	r, err = LoadKeyring(path)
	return r, err == nil, err
}

// AddKey puts a new key first in the keyring file at path (creating the
// file if there is none), so that it seals from now on while the others
// still open, and returns its id. The file is replaced atomically.
func AddKey(path string) (id string, err error) {
	var old []byte
	if _, err := load(path); err == nil {
		if old, err = os.ReadFile(path); err != nil {
			return "", fmt.Errorf("keyring: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	line, id := newKeyLine()
	var b bytes.Buffer
	b.WriteString(line + "\n")
	b.Write(old)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b.Bytes())
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close()); err != nil {
		return "", fmt.Errorf("keyring %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	return id, nil
}

// newKeyLine makes a random key and its line; its id is the date and
// four random bytes, so that ids are unique and sort by age.
func newKeyLine() (line, id string) {
	key := make([]byte, KeyLen+4)
	rand.Read(key) // never fails (crypto/rand)
	id = fmt.Sprintf("k%s-%x", time.Now().UTC().Format("20060102"), key[KeyLen:])
	return id + ":" + base64.StdEncoding.EncodeToString(key[:KeyLen]), id
}

// SealingID is the id of the key that seals: the first.
func (r *Keyring) SealingID() string { return r.keys.Load().ids[0] }

// IDs lists the key ids, the sealing one first.
func (r *Keyring) IDs() []string { return append([]string(nil), r.keys.Load().ids...) }
