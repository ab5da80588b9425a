package modelserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/wire/jsonenc"
)

// SageMaker's multi-model container contract
// (docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html):
// POST /models {"model_name", "url"} loads the artifact unpacked at url
// under the opaque name, 409 when that name is loaded, 507 when it does
// not fit; GET /models lists them (limit and next_page_token); GET and
// DELETE /models/{name}; POST /models/{name}/invoke answers as
// /invocations does, with that model.

// modelSet is a multi-model server's loaded models.
type modelSet struct {
	mu     sync.Mutex
	byName map[string]*hostedModel
	used   int64
	// loads counts successful loads since start, for GET /stats.
	loads, unloads int64
}

// hostedModel is one loaded model.
type hostedModel struct {
	name, url string
	size      int64
	l         *loaded
}

func (s *server) registerMultiModel(mux *http.ServeMux) {
	mux.HandleFunc("POST /models", s.loadModel)
	mux.HandleFunc("GET /models", s.listLoaded)
	mux.HandleFunc("GET /models/{name}", s.describeLoaded)
	mux.HandleFunc("DELETE /models/{name}", s.unloadModel)
	mux.HandleFunc("POST /models/{name}/invoke", s.invokeModel)
}

// loadModel answers POST /models.
func (s *server) loadModel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ModelName string `json:"model_name"`
		URL       string `json:"url"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.ModelName == "" || req.URL == "" {
		plainError(w, http.StatusBadRequest, `send {"model_name": "...", "url": "/path/to/unpacked/model"}`)
		return
	}
	ms := &s.models
	ms.mu.Lock()
	_, dup := ms.byName[req.ModelName]
	ms.mu.Unlock()
	if dup {
		plainError(w, http.StatusConflict, fmt.Sprintf("model %s is already loaded", req.ModelName))
		return
	}
	fi, err := os.Stat(filepath.Join(req.URL, refmodel.FileName))
	if err != nil {
		plainError(w, http.StatusNotFound, fmt.Sprintf("model %s: no %s at %s", req.ModelName, refmodel.FileName, req.URL))
		return
	}
	m, err := refmodel.Load(req.URL)
	if err != nil {
		plainError(w, http.StatusInternalServerError, err.Error())
		return
	}
	l := &loaded{model: m, name: m.Name(), labels: m.Labels()}
	for _, label := range l.labels {
		l.quoted = append(l.quoted, jsonenc.AppendString(nil, label))
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if _, dup := ms.byName[req.ModelName]; dup {
		plainError(w, http.StatusConflict, fmt.Sprintf("model %s is already loaded", req.ModelName))
		return
	}
	if s.cfg.memory > 0 && ms.used+fi.Size() > s.cfg.memory {
		plainError(w, http.StatusInsufficientStorage, fmt.Sprintf("model %s needs %d bytes; %d of %d are in use", req.ModelName, fi.Size(), ms.used, s.cfg.memory))
		return
	}
	if ms.byName == nil {
		ms.byName = map[string]*hostedModel{}
	}
	ms.byName[req.ModelName] = &hostedModel{name: req.ModelName, url: req.URL, size: fi.Size(), l: l}
	ms.used += fi.Size()
	ms.loads++
	s.log.Info("model loaded", "model_name", req.ModelName, "name", m.Name(), "bytes", fi.Size())
	writeJSON(w, map[string]string{"status": fmt.Sprintf("Model %q loaded", req.ModelName)})
}

// modelDesc is one model in GET /models, as Multi Model Server words it.
type modelDesc struct {
	ModelName string `json:"modelName"`
	ModelURL  string `json:"modelUrl"`
}

// listLoaded answers GET /models, by name, limit at a time (default 100).
func (s *server) listLoaded(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			plainError(w, http.StatusBadRequest, "limit: want a count, 1 or more")
			return
		}
		limit = n
	}
	start := 0
	if v := r.URL.Query().Get("next_page_token"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			plainError(w, http.StatusBadRequest, "next_page_token: not a token this server gave")
			return
		}
		start = n
	}
	ms := &s.models
	ms.mu.Lock()
	all := make([]modelDesc, 0, len(ms.byName))
	for _, m := range ms.byName {
		all = append(all, modelDesc{m.name, m.url})
	}
	ms.mu.Unlock()
	sort.Slice(all, func(i, k int) bool { return all[i].ModelName < all[k].ModelName })
	out := struct {
		Models        []modelDesc `json:"models"`
		NextPageToken string      `json:"nextPageToken,omitempty"`
	}{Models: []modelDesc{}}
	if start < len(all) {
		end := min(len(all), start+limit)
		out.Models = all[start:end]
		if end < len(all) {
			out.NextPageToken = strconv.Itoa(end)
		}
	}
	writeJSON(w, out)
}

func (s *server) lookup(name string) *hostedModel {
	s.models.mu.Lock()
	defer s.models.mu.Unlock()
	return s.models.byName[name]
}

// describeLoaded answers GET /models/{name}.
func (s *server) describeLoaded(w http.ResponseWriter, r *http.Request) {
	m := s.lookup(r.PathValue("name"))
	if m == nil {
		plainError(w, http.StatusNotFound, fmt.Sprintf("model %s is not loaded", r.PathValue("name")))
		return
	}
	writeJSON(w, []any{map[string]any{"modelName": m.name, "modelUrl": m.url, "status": "Loaded", "memoryUsage": m.size}})
}

// unloadModel answers DELETE /models/{name}.
func (s *server) unloadModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ms := &s.models
	ms.mu.Lock()
	m := ms.byName[name]
	if m != nil {
		delete(ms.byName, name)
		ms.used -= m.size
		ms.unloads++
	}
	ms.mu.Unlock()
	if m == nil {
		plainError(w, http.StatusNotFound, fmt.Sprintf("model %s is not loaded", name))
		return
	}
	writeJSON(w, map[string]string{"status": fmt.Sprintf("Model %q unloaded", name)})
}

// invokeModel answers POST /models/{name}/invoke with that model.
func (s *server) invokeModel(w http.ResponseWriter, r *http.Request) {
	defer s.track()()
	bp := getBuf()
	body, err := readBody(w, r, (*bp)[:0])
	defer func() { putBuf(bp, body) }()
	if s.admit(w, r, err, plainError) == nil {
		return
	}
	m := s.lookup(r.PathValue("name"))
	if m == nil {
		plainError(w, http.StatusNotFound, fmt.Sprintf("model %s is not loaded: load it with POST /models", r.PathValue("name")))
		return
	}
	s.answer(w, r, m.l, body)
}

// modelStats are a multi-model server's counts for GET /stats.
func (s *server) modelStats() (loaded int, loads, unloads int64) {
	s.models.mu.Lock()
	defer s.models.mu.Unlock()
	return len(s.models.byName), s.models.loads, s.models.unloads
}
