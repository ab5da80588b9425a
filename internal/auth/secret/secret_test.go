package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenCreatesKeyOnceWithOwnerOnlyMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFile)
	if _, err := Load(path); err == nil {
		t.Fatal("Load of a missing key succeeded")
	}
	b1, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != keySize {
		t.Fatalf("key file mode %v size %d, want 0600 and %d bytes", fi.Mode().Perm(), fi.Size(), keySize)
	}
	sealed := b1.Seal([]byte("wJalrXUtnFEMI/K7MDENG"), []byte("JKAK1"))
	if bytes.Contains(sealed, []byte("wJalrXUtnFEMI")) {
		t.Fatal("sealed value holds the plaintext")
	}
	// A second Open reads the same key.
	b2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b2.Open(sealed, []byte("JKAK1"))
	if err != nil || string(got) != "wJalrXUtnFEMI/K7MDENG" {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func TestOpenRejectsWrongKeyContextOrTampering(t *testing.T) {
	dir := t.TempDir()
	b, _ := Open(filepath.Join(dir, "a.key"))
	other, _ := Open(filepath.Join(dir, "b.key"))
	sealed := b.Seal([]byte("secret"), []byte("row-1"))
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other master key": func() ([]byte, error) { return other.Open(sealed, []byte("row-1")) },
		"other context":    func() ([]byte, error) { return b.Open(sealed, []byte("row-2")) },
		"tampered":         func() ([]byte, error) { return b.Open(tampered, []byte("row-1")) },
		"truncated":        func() ([]byte, error) { return b.Open(sealed[:5], []byte("row-1")) },
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: err = %v, want ErrOpen", name, err)
		}
	}
}

func TestOpenRejectsAShortKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFile)
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := Open(path); err == nil {
		t.Fatal("a 5-byte master key was accepted")
	}
}
