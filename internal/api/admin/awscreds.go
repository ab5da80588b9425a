package admin

import (
	"errors"
	"net/http"

	"github.com/junctionhq/junction/internal/auth/awscreds"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// registerAWSCredentials adds the routes that issue, list and revoke the
// AWS access keys of a Junction key, with which AWS SDK clients sign
// requests to the Bedrock runtime surface.
func (h *Handler) registerAWSCredentials(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/keys/{id}/aws-credentials", auth(http.HandlerFunc(h.createAWSCredential)))
	mux.Handle("GET /api/v1/keys/{id}/aws-credentials", auth(http.HandlerFunc(h.listAWSCredentials)))
	mux.Handle("DELETE /api/v1/aws-credentials/{akid}", auth(http.HandlerFunc(h.revokeAWSCredential)))
}

// CreateAWSCredentialResponse is the answer of
// POST /api/v1/keys/{id}/aws-credentials: the credential's record and,
// once, its secret access key.
type CreateAWSCredentialResponse struct {
	*awscreds.Credential
	SecretAccessKey string `json:"secret_access_key"`
}

// AWSCredentialList is the answer of GET /api/v1/keys/{id}/aws-credentials.
type AWSCredentialList struct {
	Credentials []*awscreds.Credential `json:"aws_credentials"`
}

func (h *Handler) createAWSCredential(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := h.Keys.Live(id); !ok {
		WriteError(w, r, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "key %q does not exist or is revoked", id))
		return
	}
	c, secret, err := h.AWSCreds.Create(r.Context(), id)
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	writeJSON(w, http.StatusCreated, CreateAWSCredentialResponse{Credential: c, SecretAccessKey: secret})
}

func (h *Handler) listAWSCredentials(w http.ResponseWriter, r *http.Request) {
	list, err := h.AWSCreds.List(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, AWSCredentialList{Credentials: list})
}

func (h *Handler) revokeAWSCredential(w http.ResponseWriter, r *http.Request) {
	akid := r.PathValue("akid")
	switch err := h.AWSCreds.Revoke(r.Context(), akid); {
	case errors.Is(err, awscreds.ErrNotFound):
		WriteError(w, r, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "AWS access key %q does not exist", akid))
	case err != nil:
		WriteError(w, r, llm.AsError(err))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
