package schemareg

import (
	"net/http"
	"net/http/httptest"
)

// InProcess is a transport that hands every request to h in the calling goroutine, with no
// socket: a registry in the same process (franz-go's srfake) for `pythia-pipe test`.
func InProcess(h http.Handler) http.RoundTripper { return handlerTransport{h} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, req)
	resp := w.Result()
	resp.Request = req
	return resp, nil
}
