#ifdef __cplusplus
extern "C" {
#endif

typedef void* TessBaseAPI;
typedef void* PixImage;

struct bounding_box {
    int x1, y1, x2, y2;
    char* word;
    float confidence;
    int block_num, par_num, line_num, word_num;
};

struct bounding_boxes {
    int length;
    struct bounding_box* boxes;
};

TessBaseAPI Create(void);

void Free(TessBaseAPI);
void Clear(TessBaseAPI);
void ClearPersistentCache(TessBaseAPI);
int Init(TessBaseAPI, char*, char*, char*, char*);
struct bounding_boxes* GetBoundingBoxes(TessBaseAPI, int, int);
struct bounding_boxes* GetBoundingBoxesVerbose(TessBaseAPI, int);
int RecognizeCancellable(TessBaseAPI, int*);
bool SetVariable(TessBaseAPI, char*, char*);
void SetPixImage(TessBaseAPI a, PixImage pix);
void SetPageSegMode(TessBaseAPI, int);
int GetPageSegMode(TessBaseAPI);
char* UTF8Text(TessBaseAPI);
char* HOCRText(TessBaseAPI);
void FreeText(char*);
char* GetStringVariable(TessBaseAPI, char*);
const char* Version(TessBaseAPI);
const char* GetDataPath();
const char* TesseractVersion();

PixImage CreatePixImageByFilePath(char*);
PixImage CreatePixImageFromBytes(unsigned char*, int);
PixImage OrientPixImage(PixImage pix, int orientation);
PixImage CreatePixImageFromTiffPage(unsigned char* data, size_t size, size_t offset);
PixImage CreatePixImageFromRaw(unsigned char* data, int width, int height, int stride, int channels, int dpi);
char* PageRendering(TessBaseAPI, int format, int page);
int WritePDFPage(TessBaseAPI, char* outputbase, char* datadir, int textonly);
PixImage ThresholdPixImage(PixImage pix, int threshold);
struct PageImage {
    unsigned char* data;
    size_t size;
    int g4, width, height, bps, spp, minisblack, predictor;
};
int EncodePixImage(PixImage pix, struct PageImage* out);
void FreePageImage(struct PageImage* img);
void SetInputName(TessBaseAPI, char*);
void DestroyPixImage(PixImage pix);
int DetectOrientation(TessBaseAPI, PixImage pix, int* quads, float* conf);
PixImage RotateOrthPixImage(PixImage pix, int quads);
PixImage ClonePixImage(PixImage pix);
PixImage GrayPixImage(PixImage pix);
void SetPixResolution(PixImage pix, int dpi);
PixImage DeskewPixImage(PixImage pix, float* angle, float* conf);

#ifdef __cplusplus
}
#endif /* extern "C" */
