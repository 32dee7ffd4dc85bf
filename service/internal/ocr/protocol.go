package ocr

// The engine and its worker processes (this same binary, started again with workerEnv set)
// talk over three pipes, each a gob stream: jobs (parent to worker, fd 3 in the worker),
// outcomes (worker to parent, fd 4) and stop orders (parent to worker, fd 5). The worker's
// stdout and stderr carry what Tesseract and Leptonica print, which the parent logs.

const (
	workerEnv = "READOCR_OCR_WORKER" // "1" makes ServeIfWorker serve instead of returning
	envConfig = "READOCR_OCR_WORKER_CONFIG"

	fdJobs     = 3
	fdOutcomes = 4
	fdStops    = 5
)

// workerConfig is what a worker needs to start, passed as JSON in envConfig.
type workerConfig struct {
	TessdataDir string
	DefaultLang string
	MaxClients  int // languages kept loaded
	TrimEvery   int
}

// job is one page for a worker.
type job struct {
	Seq         uint64
	Lang        string
	Image       []byte
	Orientation int
	Settings    map[string]string // Tesseract variables for this page only
	Layout      bool
}

// Kinds of failure a worker reports.
const (
	failNone        = iota
	failUndecodable // Leptonica could not decode the bytes
	failStopped     // a stop order ended the page between words
	failOther       // Tesseract or the client setup failed
)

// outcome is a worker's answer to a job (Seq 0: to its start).
type outcome struct {
	Seq     uint64
	Text    string
	Boxes   []box // word boxes in reading order, with Layout
	Fail    int
	Message string
	Langs   []string // loaded languages, most recently used last
	CHeap   uint64   // C heap in use after the page
	RSS     int64    // resident memory after the page (and a trim, when the page grew it)
}

// box is one recognised word with its place in the page's structure.
type box struct {
	Text                         string
	Confidence                   float64
	X0, Y0, X1, Y1               int
	Block, Paragraph, Line, Word int
}
