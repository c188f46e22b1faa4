package segmenter

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The camera folders are watched with inotify directly, not through
// fsnotify: fsnotify (v1.10.1) always asks the kernel for IN_MODIFY and
// cannot ask for IN_CLOSE_WRITE, and ffmpeg writes a fragment into each
// open segment twice a second (a write per packet), so at 64 cameras the
// kernel queued, and the segmenter read and classified, hundreds of events
// a second that can close nothing: a third of cctvd's CPU. This mask holds
// only what can: a segment created (the one before it is closed), a file
// closed after writing (a segment or the list, at the end of a run), and a
// file renamed into place (the run's metadata: started, its epoch, exited).
// The staging root, where only camera folders appear, stays on fsnotify.
const closeMask = unix.IN_CREATE | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_ONLYDIR | unix.IN_EXCL_UNLINK

// dirEvent is an event of a watched folder: a file name in it.
type dirEvent struct {
	Dir, Name string
}

// errOverflow: the kernel's queue overflowed and events were lost.
var errOverflow = errors.New("inotify queue overflow")

// closeWatcher watches folders for closeMask. Events and Errors are read
// by one goroutine (the watch loop); Close stops the reader and closes both.
type closeWatcher struct {
	fd     int // for inotify_add_watch (File.Fd would make f blocking)
	f      *os.File
	Events chan dirEvent
	Errors chan error
	stop   chan struct{} // closed by Close: the reader sends no more
	done   chan struct{}

	mu   sync.Mutex
	dirs map[int32]string // by watch descriptor
	wds  map[string]int32
}

func newCloseWatcher() (*closeWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &closeWatcher{
		// Non-blocking: the runtime's poller waits for it, and Close ends a
		// Read under way.
		fd:     fd,
		f:      os.NewFile(uintptr(fd), "inotify"),
		Events: make(chan dirEvent, 64),
		Errors: make(chan error, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		dirs:   map[int32]string{},
		wds:    map[string]int32{},
	}
	go w.read()
	return w, nil
}

// Add watches dir.
func (w *closeWatcher) Add(dir string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	wd, err := unix.InotifyAddWatch(w.fd, dir, closeMask)
	if err != nil {
		return fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	w.dirs[int32(wd)], w.wds[dir] = dir, int32(wd)
	return nil
}

// Watching says whether dir is watched (a removed folder no longer is).
func (w *closeWatcher) Watching(dir string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.wds[dir]
	return ok
}

// Close stops watching and waits for the reader to end.
func (w *closeWatcher) Close() error {
	close(w.stop)
	err := w.f.Close()
	<-w.done
	return err
}

func (w *closeWatcher) read() {
	defer close(w.done)
	defer close(w.Events)
	defer close(w.Errors)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				select {
				case w.Errors <- fmt.Errorf("inotify read: %w", err):
				case <-w.stop:
				}
			}
			return
		}
		for _, ev := range w.parse(buf[:n]) {
			if ev.Name == "" {
				select {
				case w.Errors <- errOverflow:
				default: // one pending is enough: it causes a full pass
				}
				continue
			}
			select {
			case w.Events <- ev:
			case <-w.stop:
				return
			}
		}
	}
}

// parse splits what one read returned into events. An overflow is an
// event without a name; a folder no longer watched (removed) is forgotten.
func (w *closeWatcher) parse(b []byte) []dirEvent {
	var out []dirEvent
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(b) >= unix.SizeofInotifyEvent {
		raw := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(raw.Len)
		if end > len(b) {
			break
		}
		name := b[unix.SizeofInotifyEvent:end]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		dir, known := w.dirs[raw.Wd]
		switch {
		case raw.Mask&unix.IN_Q_OVERFLOW != 0:
			out = append(out, dirEvent{})
		case raw.Mask&unix.IN_IGNORED != 0:
			if known {
				delete(w.dirs, raw.Wd)
				delete(w.wds, dir)
			}
		case known && len(name) > 0:
			out = append(out, dirEvent{Dir: dir, Name: string(name)})
		}
		b = b[end:]
	}
	return out
}
