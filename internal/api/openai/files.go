package openai

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Batches serves the OpenAI Files and Batch APIs over the batch engine:
// /v1/files and /v1/batches. A key sees only its own files and batches.
type Batches struct {
	Engine *batch.Engine
	Files  *batch.Files
	// MaxFileBytes caps an uploaded file.
	MaxFileBytes int64
}

// Register adds the Files and Batch routes to mux, each wrapped by auth.
func (b *Batches) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /v1/files", auth(http.HandlerFunc(b.upload)))
	mux.Handle("GET /v1/files", auth(http.HandlerFunc(b.listFiles)))
	mux.Handle("GET /v1/files/{id}", auth(http.HandlerFunc(b.getFile)))
	mux.Handle("GET /v1/files/{id}/content", auth(http.HandlerFunc(b.fileContent)))
	mux.Handle("DELETE /v1/files/{id}", auth(http.HandlerFunc(b.deleteFile)))
	mux.Handle("POST /v1/batches", auth(http.HandlerFunc(b.create)))
	mux.Handle("GET /v1/batches", auth(http.HandlerFunc(b.list)))
	mux.Handle("GET /v1/batches/{id}", auth(http.HandlerFunc(b.get)))
	mux.Handle("POST /v1/batches/{id}/cancel", auth(http.HandlerFunc(b.cancel)))
}

// fileObject is OpenAI's File object.
type fileObject struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Bytes         int64   `json:"bytes"`
	CreatedAt     int64   `json:"created_at"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"`
	ExpiresAt     *int64  `json:"expires_at"`
	StatusDetails *string `json:"status_details"`
}

func toFileObject(f *batch.File) fileObject {
	return fileObject{ID: f.ID, Object: "file", Bytes: f.Bytes, CreatedAt: f.CreatedAt.Unix(), Filename: f.Filename,
		Purpose: f.Purpose, Status: "processed"}
}

func keyID(r *http.Request) string {
	if k := api.InfoFrom(r.Context()).Key; k != nil {
		return k.ID
	}
	return "-" // never a key's id: sees nothing
}

// upload stores a multipart upload's "file" part, streaming it to disk.
// The "purpose" part may come before or after it.
func (b *Batches) upload(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		WriteError(w, r, llm.BadRequest("file", "send the file as multipart/form-data with fields file and purpose"))
		return
	}
	var staged *batch.Staged
	defer func() {
		if staged != nil {
			staged.Discard()
		}
	}()
	var filename, purpose string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			WriteError(w, r, llm.BadRequest("file", "reading the multipart body: %v", err))
			return
		}
		switch part.FormName() {
		case "purpose":
			v, _ := io.ReadAll(io.LimitReader(part, 256))
			purpose = string(v)
		case "file":
			if staged != nil {
				WriteError(w, r, llm.BadRequest("file", "send one file per upload"))
				return
			}
			filename = part.FileName()
			staged, err = b.Files.Stage(part, b.MaxFileBytes)
			if err != nil {
				b.stageError(w, r, err)
				return
			}
		}
		part.Close()
	}
	switch {
	case staged == nil:
		WriteError(w, r, llm.BadRequest("file", "the upload has no file field"))
		return
	case purpose != "batch":
		WriteError(w, r, llm.BadRequest("purpose", "purpose %q is not supported: Junction keeps files for batches, purpose \"batch\"", purpose))
		return
	}
	if filename == "" {
		filename = "upload.jsonl"
	}
	f, err := b.Files.Commit(r.Context(), staged, keyID(r), filename, purpose)
	staged = nil
	if err != nil {
		WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "storing the file: %v", err))
		return
	}
	writeJSON(w, toFileObject(f))
}

func (b *Batches) stageError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, batch.ErrTooLarge):
		WriteError(w, r, llm.Errorf(http.StatusRequestEntityTooLarge, llm.ErrInvalidRequest,
			"the file is larger than batch.max_file_bytes (%d bytes)", b.MaxFileBytes))
	case errors.As(err, &mbe):
		WriteError(w, r, llm.Errorf(http.StatusRequestEntityTooLarge, llm.ErrInvalidRequest, "the upload is too large"))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, multipart.ErrMessageTooLarge):
		WriteError(w, r, llm.BadRequest("file", "the upload ended before its file did"))
	default:
		WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "storing the file: %v", err))
	}
}

func (b *Batches) getFile(w http.ResponseWriter, r *http.Request) {
	f, err := b.Files.Get(r.Context(), keyID(r), r.PathValue("id"))
	if err != nil {
		b.notFound(w, r, "file", err)
		return
	}
	writeJSON(w, toFileObject(f))
}

func (b *Batches) fileContent(w http.ResponseWriter, r *http.Request) {
	f, rc, err := b.Files.Open(r.Context(), keyID(r), r.PathValue("id"))
	if err != nil {
		b.notFound(w, r, "file", err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(f.Bytes, 10))
	io.Copy(w, rc)
}

func (b *Batches) deleteFile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := b.Files.Delete(r.Context(), keyID(r), id); err != nil {
		b.notFound(w, r, "file", err)
		return
	}
	writeJSON(w, map[string]any{"id": id, "object": "file", "deleted": true})
}

func (b *Batches) listFiles(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, e := pageLimit(q.Get("limit"), 10000)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	files, more, err := b.Files.List(r.Context(), keyID(r), q.Get("purpose"), q.Get("after"), limit)
	if err != nil {
		b.notFound(w, r, "file", err)
		return
	}
	data := make([]fileObject, len(files))
	for i, f := range files {
		data[i] = toFileObject(f)
	}
	writeJSON(w, page(data, more, func(f fileObject) string { return f.ID }))
}

// notFound answers a lookup's error: 404 for what the key cannot see.
func (b *Batches) notFound(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, batch.ErrNotFound) {
		WriteError(w, r, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "No such %s: %s", what, r.PathValue("id")))
		return
	}
	WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "%v", err))
}

// pageLimit parses a list's limit, 1 to most; empty is 20.
func pageLimit(s string, most int) (int, *llm.Error) {
	if s == "" {
		return min(20, most), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, llm.BadRequest("limit", "limit must be a whole number from 1 to %d", most)
	}
	return n, nil
}

// cursorPage is OpenAI's cursor-paginated list.
type cursorPage[T any] struct {
	Object  string  `json:"object"`
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

func page[T any](data []T, more bool, id func(T) string) cursorPage[T] {
	p := cursorPage[T]{Object: "list", Data: data, HasMore: more}
	if len(data) > 0 {
		first, last := id(data[0]), id(data[len(data)-1])
		p.FirstID, p.LastID = &first, &last
	}
	return p
}
