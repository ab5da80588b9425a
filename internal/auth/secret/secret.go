// Package secret encrypts the few secrets Junction must be able to read
// back, such as the secret access keys it issues for AWS Signature V4,
// which verifying a signature needs in plaintext. (API keys are only
// hashed; they do not come here.)
//
// Secrets are sealed with AES-256-GCM under a master key kept in a file
// in the data directory, created with 32 random bytes and mode 0600 on
// first use. A copy of the database without that file reveals no secret.
// It is not a key-management service: whoever can read the data directory
// can read the secrets.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// KeyFile is the master key's file name in the data directory.
const KeyFile = "master.key"

// keySize is the master key's length: AES-256.
const keySize = 32

// Box seals and opens secrets under one master key. It is safe for
// concurrent use.
type Box struct {
	aead cipher.AEAD
}

// Open returns a Box over the master key at path, creating the file with
// a new random key if it does not exist.
func Open(path string) (*Box, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = create(path)
	}
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("master key %s: %d bytes, want %d: restore the original file", path, len(key), keySize)
	}
	return New(key)
}

// Load returns a Box over the existing master key at path; it fails if
// the file does not exist.
func Load(path string) (*Box, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("master key %s: %d bytes, want %d: restore the original file", path, len(key), keySize)
	}
	return New(key)
}

// create writes a new random key to path, readable by the owner only. If
// another process made the file first, its key is used.
func create(path string) ([]byte, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return key, f.Close()
}

// New returns a Box over a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("master key: %d bytes, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext, binding it to context (for example the row's
// id, so a ciphertext copied to another row does not open). The result
// is the random nonce followed by the ciphertext and tag.
func (b *Box) Seal(plaintext, context []byte) []byte {
	out := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b.aead.Seal(out, out, plaintext, context)
}

// ErrOpen is returned when a ciphertext does not open: the master key is
// not the one it was sealed with, or the ciphertext or its context
// changed.
var ErrOpen = errors.New("secret does not decrypt: wrong master key, or the stored value was altered")

// Open decrypts a Seal result with the same context.
func (b *Box) Open(sealed, context []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], context)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
