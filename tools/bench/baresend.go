package bench

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cctvd/cctvd/internal/filesum"
)

// bareSend is the upload's physical baseline into the same server: the
// same parts of the same file, each with the CRC-64/NVME header the
// uploader sends, PUT by a bare HTTP client (net/http, no SDK, no
// signing, no records) with the same concurrency, after one
// CreateMultipartUpload; no completion, no HEAD. What it leaves out of
// the uploader's work is what the uploader adds: the ratio against it is
// the client's own cost over the same loopback and server.
func bareSend(ctx context.Context, endpoint, key, path string, sums filesum.Sums, part int64, concurrency int) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	type job struct {
		num         int
		off, length int64
		crc         string
	}
	var jobs []job
	for off, n := int64(0), 1; off < sums.Size; off, n = off+part, n+1 {
		l := min(part, sums.Size-off)
		crc, ok := filesum.PartCRC64(sums.Blocks, sums.Size, off, l)
		if !ok {
			return 0, fmt.Errorf("part %d: no CRC from the blocks", n)
		}
		jobs = append(jobs, job{n, off, l, filesum.CRC64Base64(crc)})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/bench/"+key+"?uploads", nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	var created struct{ UploadId string }
	err = xml.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || created.UploadId == "" {
		return 0, fmt.Errorf("create: %v %q", err, created.UploadId)
	}
	next := make(chan job)
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for j := range next {
				url := fmt.Sprintf("%s/bench/%s?partNumber=%d&uploadId=%s", endpoint, key, j.num, created.UploadId)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, url, io.NewSectionReader(f, j.off, j.length))
				req.ContentLength = j.length
				req.Header.Set("x-amz-checksum-crc64nvme", j.crc)
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("part %d: %s", j.num, resp.Status)
					return
				}
			}
		})
	}
	var sendErr error
feed:
	for _, j := range jobs {
		select {
		case next <- j:
		case sendErr = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if sendErr == nil && len(errs) > 0 {
		sendErr = <-errs
	}
	return time.Since(start), sendErr
}
