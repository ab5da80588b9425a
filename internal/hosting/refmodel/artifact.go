package refmodel

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Format is the "format" value of the model.json this package reads and
// writes.
const Format = "junction-refmodel/1"

// FileName is the name of the model file inside an artifact directory.
const FileName = "model.json"

// Name and version of the demo artifact.
const (
	DemoName    = "junction-ref"
	DemoVersion = "1"
)

// Training constants of the demo artifact.
const (
	demoAlpha   = 1.0
	demoBackoff = 0.1
)

// archiveTime is the modification time of every entry in the demo tar.gz,
// fixed so that its bytes do not depend on when it was built.
var archiveTime = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// corpus holds the training data: data/intents/<label>.txt with one
// example per line, and data/prose.txt for the language model.
//
//go:embed data/intents/*.txt data/prose.txt
var corpus embed.FS

// artifact is the model.json document; see the package comment.
type artifact struct {
	Format        string         `json:"format"`
	Name          string         `json:"name"`
	Version       string         `json:"version"`
	Classifier    classifierSpec `json:"classifier"`
	LanguageModel lmSpec         `json:"language_model"`
}

// parse builds a Model from the bytes of a model.json.
func parse(data []byte) (*Model, error) {
	var a artifact
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, err
	}
	if a.Format != Format {
		return nil, fmt.Errorf("format %q: this build reads %q", a.Format, Format)
	}
	if a.Name == "" {
		return nil, fmt.Errorf("name: must not be empty")
	}
	cls, err := newClassifier(a.Classifier)
	if err != nil {
		return nil, err
	}
	lm, err := newLM(a.LanguageModel)
	if err != nil {
		return nil, err
	}
	return &Model{name: a.Name, version: a.Version, cls: cls, lm: lm}, nil
}

// Load reads the artifact in dir (the directory holding model.json).
func Load(dir string) (*Model, error) {
	file := filepath.Join(dir, FileName)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("load model: %s: %w", file, err)
	}
	return m, nil
}

// Demo trains the demo model in memory, as WriteDemoArtifact followed by
// Load would give it.
func Demo() (*Model, error) {
	data, err := demoJSON()
	if err != nil {
		return nil, err
	}
	return parse(data)
}

// WriteDemoArtifact trains the demo model from the corpora built into this
// package and writes it as an artifact into dir, creating dir if needed.
// The bytes are the same on every run.
func WriteDemoArtifact(dir string) error {
	data, err := demoJSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, FileName), data, 0o644)
}

// WriteDemoTarGz writes the demo artifact as a gzip-compressed tar file
// file, with model.json at the archive root, the way SageMaker expects a
// ModelDataUrl archive. Entry times, owners and modes are fixed, so the
// bytes are the same on every run with the same Go release.
func WriteDemoTarGz(file string) error {
	data, err := demoJSON()
	if err != nil {
		return err
	}
	return writeTarGz(file, data)
}

// WriteNamedTarGz writes the demo artifact as WriteDemoTarGz does, but
// named name and with every label prefixed "name:", so that each such
// model answers differently: tests of multi-model endpoints tell from an
// answer which model gave it.
func WriteNamedTarGz(file, name string) error {
	data, err := demoJSON()
	if err != nil {
		return err
	}
	var a artifact
	if err := json.Unmarshal(data, &a); err != nil {
		return err
	}
	a.Name = name
	for i := range a.Classifier.Labels {
		a.Classifier.Labels[i].Name = name + ":" + a.Classifier.Labels[i].Name
	}
	if data, err = json.Marshal(a); err != nil {
		return err
	}
	return writeTarGz(file, append(data, '\n'))
}

// writeTarGz writes data as model.json in a reproducible .tar.gz.
func writeTarGz(file string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     FileName,
		Size:     int64(len(data)),
		Mode:     0o644,
		ModTime:  archiveTime,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(file, buf.Bytes(), 0o644)
}

// demoJSON returns the demo model.json bytes, trained once per process.
var demoJSON = sync.OnceValues(trainDemo)

// trainDemo trains the demo model from the built-in corpora and returns its
// model.json bytes.
func trainDemo() ([]byte, error) {
	examples, err := readIntents(corpus)
	if err != nil {
		return nil, err
	}
	prose, err := fs.ReadFile(corpus, "data/prose.txt")
	if err != nil {
		return nil, err
	}
	a := artifact{
		Format:        Format,
		Name:          DemoName,
		Version:       DemoVersion,
		Classifier:    trainClassifier(examples, demoAlpha),
		LanguageModel: trainLM(string(prose), demoBackoff),
	}
	data, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// readIntents reads data/intents/<label>.txt files: one example per
// non-blank line; lines starting with # are comments.
func readIntents(fsys fs.FS) ([]example, error) {
	files, err := fs.Glob(fsys, "data/intents/*.txt")
	if err != nil {
		return nil, err
	}
	var out []example
	for _, name := range files {
		label := strings.TrimSuffix(path.Base(name), ".txt")
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			out = append(out, example{label: label, text: line})
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no training examples under data/intents")
	}
	return out, nil
}
