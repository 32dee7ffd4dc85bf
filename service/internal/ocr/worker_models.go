package ocr

import (
	"slices"
	"strings"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/glibcmalloc"
)

// A worker's loaded models. Each client holds its own copy of its languages' models (Tesseract
// shares nothing between clients: eng and eng+deu hold eng twice), and one that has read a page
// with --psm 0 or 1 holds the orientation model too. The worker keeps what they cost together
// within ModelMemory, its share of the pod's memory for models (membudget.Plan), by closing
// the least recently used clients before it loads more: whatever languages requests ask for,
// in whatever order, a worker's models never cost more than its share.

// client returns the warm client for lang, creating it (after evicting clients beyond
// MaxClients or ModelMemory) if needed.
func (w *worker) client(lang string) (*client, error) {
	for i, c := range w.clients {
		if c.lang == lang {
			w.clients = append(slices.Delete(w.clients, i, i+1), c)
			return c, nil
		}
	}
	need := w.modelCost(lang)
	w.evict(need, 1, 0)
	c, err := newClient(w.cfg.TessdataDir, lang)
	if err != nil {
		// Every model was loaded once at start (probe); one that no longer loads was changed since.
		return nil, failure.Wrap(failure.UnknownLanguage, err, "%s could not be loaded: %v", lang, err)
	}
	c.memory = need
	w.clients = append(w.clients, c)
	return c, nil
}

// makeRoomForOSD accounts for the orientation model that c, the client about to read a page,
// loads when the page's settings ask for --psm 0 or 1, evicting other clients to make room.
func (w *worker) makeRoomForOSD(c *client, settings map[string]string) {
	if psm := settings["tessedit_pageseg_mode"]; c.osd || (psm != "0" && psm != "1") {
		return
	}
	w.evict(w.cfg.OSDMemory, 0, 1) // c is the most recently used: the last, kept
	c.osd, c.memory = true, c.memory+w.cfg.OSDMemory
}

// evict closes the least recently used clients, never the last keep, until need more bytes of
// models and more clients fit, and gives the memory back.
func (w *worker) evict(need int64, more, keep int) {
	closed := false
	for len(w.clients) > keep && (len(w.clients)+more > max(w.cfg.MaxClients, 1) ||
		w.cfg.ModelMemory > 0 && w.modelMemory()+need > w.cfg.ModelMemory) {
		w.clients[0].tess.Close()
		w.clients = w.clients[1:]
		closed = true
	}
	if closed {
		glibcmalloc.Trim()
	}
}

// modelMemory is what the loaded clients' models cost.
func (w *worker) modelMemory() int64 {
	var n int64
	for _, c := range w.clients {
		n += c.memory
	}
	if w.osd != nil {
		n += w.cfg.OSDMemory
	}
	return n
}

// modelCost is what a client for lang costs.
func (w *worker) modelCost(lang string) int64 {
	var n int64
	for _, name := range strings.Split(lang, "+") {
		n += w.cfg.Costs[name]
	}
	return n
}
