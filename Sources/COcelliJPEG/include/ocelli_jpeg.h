// JPEG decoding and encoding through libjpeg(-turbo) with errors returned, never exit()ed.
//
// libjpeg reports a fatal error by calling `error_exit`, which must not return; the only way back
// is longjmp, which Swift cannot express. These functions set up the jump in C and return a status
// with libjpeg's own message instead. Corrupt-data warnings (a truncated file, a bad Huffman code)
// are fatal too: libjpeg would otherwise pad the missing part of the image with grey and succeed.
#ifndef OCELLI_JPEG_H
#define OCELLI_JPEG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Outcome of a call.
typedef enum {
    OCELLI_JPEG_OK = 0,
    /// The data ends before the image does ("Premature end of JPEG file").
    OCELLI_JPEG_TRUNCATED = 1,
    /// Not a valid JPEG stream, or its entropy-coded data is damaged.
    OCELLI_JPEG_CORRUPT = 2,
    /// A valid stream this decoder does not handle (e.g. an unusual colour space).
    OCELLI_JPEG_UNSUPPORTED = 3,
    OCELLI_JPEG_OUT_OF_MEMORY = 4,
} ocelli_jpeg_status;

/// A decompressor reading one JPEG image from memory. Allocated on the heap so that libjpeg's
/// structs keep stable addresses.
typedef struct ocelli_jpeg_decoder ocelli_jpeg_decoder;

/// A new decoder, or NULL when memory is exhausted.
ocelli_jpeg_decoder *ocelli_jpeg_decoder_create(void);
/// Frees the decoder and everything libjpeg allocated for it.
void ocelli_jpeg_decoder_destroy(ocelli_jpeg_decoder *decoder);
/// libjpeg's message for the last failure (empty after success). Owned by the decoder.
const char *ocelli_jpeg_decoder_message(const ocelli_jpeg_decoder *decoder);

/// Reads the headers of the JPEG in `data` (which must stay alive until the pixels are read).
/// On success sets the output size: `channels` is 1 for grayscale JPEGs, 3 (RGB) otherwise.
ocelli_jpeg_status ocelli_jpeg_read_header(ocelli_jpeg_decoder *decoder, const unsigned char *data,
                                           size_t size, int *width, int *height, int *channels);

/// Decodes the image into `pixels`: `height` rows of `width * channels` bytes, `row_stride`
/// bytes apart. Uses the accurate integer IDCT and fancy (triangle-filter) chroma upsampling,
/// libjpeg's defaults, set explicitly. CMYK/YCCK images are converted to RGB.
ocelli_jpeg_status ocelli_jpeg_read_pixels(ocelli_jpeg_decoder *decoder, unsigned char *pixels,
                                           size_t row_stride);

/// Encodes `height` rows of `width * channels` bytes (`channels` 1 = gray, 3 = RGB, 4 = RGBA with
/// the alpha channel ignored) at `quality` 1...100 with 4:2:0 chroma subsampling for colour.
/// On success `*output` holds `*output_size` bytes allocated with malloc (release with
/// `ocelli_jpeg_free`). On failure `message` (at least 200 bytes) receives libjpeg's message.
ocelli_jpeg_status ocelli_jpeg_encode(const unsigned char *pixels, int width, int height,
                                      int channels, size_t row_stride, int quality,
                                      unsigned char **output, size_t *output_size, char *message);

/// Frees a buffer returned by `ocelli_jpeg_encode`.
void ocelli_jpeg_free(void *buffer);

#ifdef __cplusplus
}
#endif

#endif
