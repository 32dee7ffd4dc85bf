//go:build tesseract_static

// readocr: stand-ins for the libarchive and libcurl entry points libtesseract references
// (nm -u libtesseract.a). Every one fails the way the real library reports failure, so
// Tesseract takes its fallback path:
//  - TessdataManager::LoadArchiveFile gets NULL from archive_read_new and reads the
//    .traineddata file directly (what it does anyway for a file that is not an archive);
//  - ProcessPagesInternal gets NULL from curl_easy_init for http: image names, a path the
//    service never takes (it hands images to Tesseract in memory).
#include <stddef.h>
#include <sys/types.h>

#define ARCHIVE_FATAL (-30)
#define CURLE_FAILED_INIT 2

struct archive;
struct archive_entry;

struct archive *archive_read_new(void) { return NULL; }
int archive_read_support_filter_all(struct archive *a) { (void)a; return ARCHIVE_FATAL; }
int archive_read_support_format_all(struct archive *a) { (void)a; return ARCHIVE_FATAL; }
int archive_read_open_filename(struct archive *a, const char *f, size_t b) { (void)a; (void)f; (void)b; return ARCHIVE_FATAL; }
int archive_read_next_header(struct archive *a, struct archive_entry **e) { (void)a; (void)e; return ARCHIVE_FATAL; }
const char *archive_entry_pathname(struct archive_entry *e) { (void)e; return NULL; }
long long archive_entry_size(struct archive_entry *e) { (void)e; return 0; }
ssize_t archive_read_data(struct archive *a, void *buf, size_t n) { (void)a; (void)buf; (void)n; return ARCHIVE_FATAL; }
int archive_read_free(struct archive *a) { (void)a; return ARCHIVE_FATAL; }

void *curl_easy_init(void) { return NULL; }
int curl_easy_setopt(void *c, int opt, ...) { (void)c; (void)opt; return CURLE_FAILED_INIT; }
int curl_easy_perform(void *c) { (void)c; return CURLE_FAILED_INIT; }
void curl_easy_cleanup(void *c) { (void)c; }
const char *curl_easy_strerror(int code) { (void)code; return "URL input is not built into this binary"; }
