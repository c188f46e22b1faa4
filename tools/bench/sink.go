package bench

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cctvd/cctvd/internal/filesum"
)

// sinkS3 is a second upload target for the throughput step, named as such:
// the few S3 calls cctvd's uploader makes for a new object (PutObject;
// CreateMultipartUpload, UploadPart, CompleteMultipartUpload; HEAD;
// ListMultipartUploads), on loopback, keeping no bytes. It is not MinIO's
// ceiling (no disk, no erasure coding, no bucket metadata), so the rate
// the uploader reaches against it is the uploader's own, where the server
// is not the limit. It checks what it is sent all the same: a part's
// CRC-64/NVME against its header, the whole object's (combined from the
// parts') against the completion's, a single PUT's SHA-256, and refuses a
// mismatch (400 BadDigest) as S3 does; a HEAD gives the size, metadata and
// checksum it computed, so the uploader's verification runs as against S3.
type sinkS3 struct {
	ln  net.Listener
	srv *http.Server

	mu      sync.Mutex
	uploads map[string]*sinkUpload // by upload id
	objects map[string]sinkObject  // by key
	next    int
	refused int
}

type sinkUpload struct {
	key   string
	meta  http.Header
	parts map[int]sinkPart
}

type sinkPart struct {
	size int64
	crc  uint64
	etag string
}

type sinkObject struct {
	size      int64
	meta      http.Header
	etag      string
	crc64     string // base64, multipart (full object)
	sha256b64 string // single PUT
}

func startSink() (*sinkS3, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sinkS3{ln: ln, uploads: map[string]*sinkUpload{}, objects: map[string]sinkObject{}}
	s.srv = &http.Server{Handler: s}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *sinkS3) endpoint() string { return "http://" + s.ln.Addr().String() }

func (s *sinkS3) stop() { s.srv.Close() }

// forget drops the objects kept (their sizes and sums), between runs.
func (s *sinkS3) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects = map[string]sinkObject{}
	s.uploads = map[string]*sinkUpload{}
}

func metaOf(h http.Header) http.Header {
	m := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "X-Amz-Meta-") {
			m[k] = v
		}
	}
	return m
}

func (s *sinkS3) fail(w http.ResponseWriter, status int, code string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, code)
}

func (s *sinkS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Path style: /bucket/key.
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && q.Has("uploads"):
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`)
	case r.Method == http.MethodHead:
		s.mu.Lock()
		o, ok := s.objects[key]
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		for k, v := range o.meta {
			w.Header()[k] = v
		}
		w.Header().Set("ETag", o.etag)
		w.Header().Set("Content-Length", strconv.FormatInt(o.size, 10))
		if o.crc64 != "" {
			w.Header().Set("x-amz-checksum-crc64nvme", o.crc64)
			w.Header().Set("x-amz-checksum-type", "FULL_OBJECT")
		}
		if o.sha256b64 != "" {
			w.Header().Set("x-amz-checksum-sha256", o.sha256b64)
		}
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && q.Has("uploads"):
		s.mu.Lock()
		s.next++
		id := fmt.Sprintf("sink-%d", s.next)
		s.uploads[id] = &sinkUpload{key: key, meta: metaOf(r.Header), parts: map[int]sinkPart{}}
		s.mu.Unlock()
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, key, id)
	case r.Method == http.MethodPut && q.Has("partNumber"):
		s.part(w, r, q.Get("uploadId"), q.Get("partNumber"))
	case r.Method == http.MethodPost && q.Has("uploadId"):
		s.complete(w, r, key, q.Get("uploadId"))
	case r.Method == http.MethodPut:
		s.put(w, r, key)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		s.fail(w, http.StatusBadRequest, "NotImplemented")
	}
}

// read reads the body for its CRC-64/NVME (and, with h, another hash).
func read(body io.Reader, h hash.Hash) (int64, uint64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	var crc uint64
	for {
		k, err := body.Read(buf)
		if k > 0 {
			crc = filesum.UpdateCRC64(crc, buf[:k])
			if h != nil {
				h.Write(buf[:k])
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, crc, nil
		}
		if err != nil {
			return n, crc, err
		}
	}
}

func (s *sinkS3) part(w http.ResponseWriter, r *http.Request, id, num string) {
	n, err := strconv.Atoi(num)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "InvalidArgument")
		return
	}
	size, crc, err := read(r.Body, nil)
	if err != nil {
		return
	}
	if want := r.Header.Get("x-amz-checksum-crc64nvme"); want != filesum.CRC64Base64(crc) {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		s.fail(w, http.StatusBadRequest, "BadDigest")
		return
	}
	s.mu.Lock()
	u, ok := s.uploads[id]
	etag := fmt.Sprintf(`"%016x"`, crc)
	if ok {
		u.parts[n] = sinkPart{size: size, crc: crc, etag: etag}
	}
	s.mu.Unlock()
	if !ok {
		s.fail(w, http.StatusNotFound, "NoSuchUpload")
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("x-amz-checksum-crc64nvme", filesum.CRC64Base64(crc))
	w.WriteHeader(http.StatusOK)
}

func (s *sinkS3) complete(w http.ResponseWriter, r *http.Request, key, id string) {
	var req struct {
		Parts []struct {
			PartNumber int
			ETag       string
		} `xml:"Part"`
	}
	if err := xml.NewDecoder(r.Body).Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, "MalformedXML")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok {
		s.fail(w, http.StatusNotFound, "NoSuchUpload")
		return
	}
	if _, taken := s.objects[key]; taken && r.Header.Get("If-None-Match") == "*" {
		s.fail(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return
	}
	var whole uint64
	var size int64
	for _, p := range req.Parts {
		sp, ok := u.parts[p.PartNumber]
		if !ok || sp.etag != p.ETag {
			s.fail(w, http.StatusBadRequest, "InvalidPart")
			return
		}
		whole = filesum.CombineCRC64(whole, sp.crc, sp.size)
		size += sp.size
	}
	crc := filesum.CRC64Base64(whole)
	if want := r.Header.Get("x-amz-checksum-crc64nvme"); want != "" && want != crc {
		s.refused++
		s.fail(w, http.StatusBadRequest, "BadDigest")
		return
	}
	etag := fmt.Sprintf(`"%016x-%d"`, whole, len(req.Parts))
	s.objects[key] = sinkObject{size: size, meta: u.meta, etag: etag, crc64: crc}
	delete(s.uploads, id)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Key>%s</Key><ETag>%s</ETag>`+
		`<ChecksumCRC64NVME>%s</ChecksumCRC64NVME><ChecksumType>FULL_OBJECT</ChecksumType></CompleteMultipartUploadResult>`, key, etag, crc)
}

func (s *sinkS3) put(w http.ResponseWriter, r *http.Request, key string) {
	h := sha256.New()
	size, _, err := read(r.Body, h)
	if err != nil {
		return
	}
	sum := h.Sum(nil)
	got := base64.StdEncoding.EncodeToString(sum)
	if want := r.Header.Get("x-amz-checksum-sha256"); want != got {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		s.fail(w, http.StatusBadRequest, "BadDigest")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.objects[key]; taken && r.Header.Get("If-None-Match") == "*" {
		s.fail(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return
	}
	m := md5.Sum(sum) // no MD5 of the bytes: the ETag only has to be stable
	etag := `"` + hex.EncodeToString(m[:]) + `"`
	s.objects[key] = sinkObject{size: size, meta: metaOf(r.Header), etag: etag, sha256b64: got}
	w.Header().Set("ETag", etag)
	w.Header().Set("x-amz-checksum-sha256", got)
	w.WriteHeader(http.StatusOK)
}
