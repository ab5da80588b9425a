package refmodel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustTrain(t *testing.T) []byte {
	t.Helper()
	data, err := trainDemo()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestTrainingIsDeterministic(t *testing.T) {
	// Training walks Go maps, whose order changes run to run; the output
	// must not.
	first := mustTrain(t)
	for range 3 {
		if !bytes.Equal(mustTrain(t), first) {
			t.Fatal("two trainings wrote different model.json bytes")
		}
	}
}

func TestDemoArtifactRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "model")
	if err := WriteDemoArtifact(dir); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != DemoName || m.Version() != DemoVersion {
		t.Fatalf("name %q version %q", m.Name(), m.Version())
	}
	if got := strings.Join(m.Labels(), ","); got != "account,billing,feature_request,outage,praise" {
		t.Fatalf("labels %s", got)
	}
	data, _ := os.ReadFile(filepath.Join(dir, FileName))
	if !bytes.Equal(data, mustTrain(t)) {
		t.Fatal("artifact bytes differ from a fresh training")
	}
	t.Logf("model.json is %d bytes", len(data))
}

func TestDemoTarGzIsStableAndFlat(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar.gz"), filepath.Join(dir, "b.tar.gz")
	if err := WriteDemoTarGz(a); err != nil {
		t.Fatal(err)
	}
	if err := WriteDemoTarGz(b); err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Fatal("two archives differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(da))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != FileName || !hdr.ModTime.Equal(archiveTime) || hdr.Mode != 0o644 {
		t.Fatalf("entry %q mod %v mode %o", hdr.Name, hdr.ModTime, hdr.Mode)
	}
	body, _ := io.ReadAll(tr)
	if !bytes.Equal(body, mustTrain(t)) {
		t.Fatal("archived model.json differs from the artifact")
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("want one entry, next: %v", err)
	}
}

func TestLoadReportsWhatIsWrong(t *testing.T) {
	if _, err := Load(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty dir: %v", err)
	}
	good := mustTrain(t)
	edit := func(f func(a map[string]any)) []byte {
		var a map[string]any
		if err := json.Unmarshal(good, &a); err != nil {
			t.Fatal(err)
		}
		f(a)
		out, _ := json.Marshal(a)
		return out
	}
	cls := func(a map[string]any) map[string]any { return a["classifier"].(map[string]any) }
	lm := func(a map[string]any) map[string]any { return a["language_model"].(map[string]any) }
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"not json", "invalid character", []byte("{oops")},
		{"format", `format "other/9"`, edit(func(a map[string]any) { a["format"] = "other/9" })},
		{"unknown field", "unknown field", edit(func(a map[string]any) { a["weights"] = 1 })},
		{"no name", "name", edit(func(a map[string]any) { a["name"] = "" })},
		{"alpha", "classifier.alpha", edit(func(a map[string]any) { cls(a)["alpha"] = 0 })},
		{"one label", "classifier.labels", edit(func(a map[string]any) {
			cls(a)["labels"] = cls(a)["labels"].([]any)[:1]
		})},
		{"odd counts", "classifier.labels[0].counts: odd", edit(func(a map[string]any) {
			l := cls(a)["labels"].([]any)[0].(map[string]any)
			l["counts"] = l["counts"].([]any)[:3]
		})},
		{"feature index", "out of range", edit(func(a map[string]any) {
			l := cls(a)["labels"].([]any)[1].(map[string]any)
			l["counts"].([]any)[0] = 1e6
		})},
		{"backoff", "language_model.backoff", edit(func(a map[string]any) { lm(a)["backoff"] = 1 })},
		{"unigrams", "language_model.unigrams", edit(func(a map[string]any) {
			lm(a)["unigrams"] = lm(a)["unigrams"].([]any)[1:]
		})},
		{"trigram width", "language_model.trigrams: length", edit(func(a map[string]any) {
			lm(a)["trigrams"] = lm(a)["trigrams"].([]any)[1:]
		})},
		{"trigram order", "not sorted", edit(func(a map[string]any) {
			tri := lm(a)["trigrams"].([]any)
			lm(a)["trigrams"] = append(append([]any{}, tri[len(tri)-4:]...), tri...)
		})},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}
