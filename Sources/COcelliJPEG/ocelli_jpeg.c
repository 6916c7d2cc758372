#include "ocelli_jpeg.h"

#include <setjmp.h>
#include <stdio.h>  // jpeglib.h needs FILE and size_t first
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

// MARK: Errors

/// libjpeg's error manager extended with the jump back to the entry function. `base` comes first
/// so that libjpeg's `cinfo->err` can be cast to it.
typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    ocelli_jpeg_status status;
    char message[JMSG_LENGTH_MAX];
    int hit_end_of_data;  // the decoder asked for bytes past the end of the input
} error_manager;

/// Every failure after the input ran out is reported as libjpeg's own "Premature end of JPEG file".
static void record_failure(j_common_ptr cinfo, error_manager *error, ocelli_jpeg_status status) {
    if (error->hit_end_of_data) {
        cinfo->err->msg_code = JWRN_JPEG_EOF;
        status = OCELLI_JPEG_TRUNCATED;
    }
    (*cinfo->err->format_message)(cinfo, error->message);
    error->status = status;
}

static ocelli_jpeg_status status_for_error(int code) {
    switch (code) {
    case JERR_OUT_OF_MEMORY:
        return OCELLI_JPEG_OUT_OF_MEMORY;
    case JERR_INPUT_EMPTY:
    case JERR_INPUT_EOF:
        return OCELLI_JPEG_TRUNCATED;
    case JERR_ARITH_NOTIMPL:
    case JERR_CCIR601_NOTIMPL:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_FRACT_SAMPLE_NOTIMPL:
    case JERR_NOTIMPL:
    case JERR_NOT_COMPILED:
        return OCELLI_JPEG_UNSUPPORTED;
    default:
        return OCELLI_JPEG_CORRUPT;
    }
}

static void on_error_exit(j_common_ptr cinfo) {
    error_manager *error = (error_manager *)cinfo->err;
    record_failure(cinfo, error, status_for_error(cinfo->err->msg_code));
    longjmp(error->jump, 1);
}

/// Warnings (level -1) about damaged data end the call: libjpeg would carry on and fill the
/// rest of the image with grey (after the data runs out) or with garbage. Warnings about
/// harmless oddities (extraneous bytes between markers, an unknown JFIF revision or Adobe
/// transform code, a bad ICC marker) are ignored, as other decoders do. Trace messages
/// (level >= 0) are never printed.
static void on_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    error_manager *error = (error_manager *)cinfo->err;
    int code = cinfo->err->msg_code;
    cinfo->err->num_warnings++;
    ocelli_jpeg_status status;
    if (code == JWRN_JPEG_EOF) {
        status = OCELLI_JPEG_TRUNCATED;
    } else if (code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE || code == JWRN_MUST_RESYNC ||
               code == JWRN_NOT_SEQUENTIAL) {
        status = OCELLI_JPEG_CORRUPT;
    } else {
        return;
    }
    record_failure(cinfo, error, status);
    longjmp(error->jump, 1);
}

static void install_error_manager(error_manager *error) {
    jpeg_std_error(&error->base);
    error->base.error_exit = on_error_exit;
    error->base.emit_message = on_emit_message;
    error->status = OCELLI_JPEG_OK;
    error->message[0] = 0;
    error->hit_end_of_data = 0;
}

// MARK: Reading from memory

/// libjpeg's memory source, except that running out of data is not a warning by itself. The
/// Huffman decoder reads ahead to fill its bit buffer, so a file whose entropy-coded data is
/// complete but lacks only the final EOI marker asks for bytes past the end too. Both get a fake
/// EOI; only when the decoder then needs bits it does not have does it warn ("premature end of
/// data segment"), and that warning, or any error after the end was hit, becomes "truncated".
static void source_init(j_decompress_ptr cinfo) { (void)cinfo; }
static void source_term(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean source_fill(j_decompress_ptr cinfo) {
    static const JOCTET fake_eoi[2] = {0xFF, JPEG_EOI};
    ((error_manager *)cinfo->err)->hit_end_of_data = 1;
    cinfo->src->next_input_byte = fake_eoi;
    cinfo->src->bytes_in_buffer = 2;
    return TRUE;
}

static void source_skip(j_decompress_ptr cinfo, long count) {
    struct jpeg_source_mgr *source = cinfo->src;
    if (count <= 0) return;
    while (count > (long)source->bytes_in_buffer) {
        count -= (long)source->bytes_in_buffer;
        source_fill(cinfo);
    }
    source->next_input_byte += count;
    source->bytes_in_buffer -= (size_t)count;
}

// MARK: Decoding

struct ocelli_jpeg_decoder {
    struct jpeg_decompress_struct cinfo;
    error_manager error;
    struct jpeg_source_mgr source;
    int cmyk;                 // decode as CMYK, convert to RGB per row
    unsigned char *cmyk_rows; // scratch for CMYK rows (freed by the next read or destroy)
};

ocelli_jpeg_decoder *ocelli_jpeg_decoder_create(void) {
    ocelli_jpeg_decoder *decoder = calloc(1, sizeof(ocelli_jpeg_decoder));
    if (!decoder) return NULL;
    install_error_manager(&decoder->error);
    decoder->cinfo.err = &decoder->error.base;
    if (setjmp(decoder->error.jump)) {  // only "out of memory" can happen here
        free(decoder);
        return NULL;
    }
    jpeg_create_decompress(&decoder->cinfo);
    return decoder;
}

void ocelli_jpeg_decoder_destroy(ocelli_jpeg_decoder *decoder) {
    if (!decoder) return;
    jpeg_destroy_decompress(&decoder->cinfo);
    free(decoder->cmyk_rows);
    free(decoder);
}

const char *ocelli_jpeg_decoder_message(const ocelli_jpeg_decoder *decoder) {
    return decoder->error.message;
}

ocelli_jpeg_status ocelli_jpeg_read_header(ocelli_jpeg_decoder *decoder, const unsigned char *data,
                                           size_t size, int *width, int *height, int *channels) {
    struct jpeg_decompress_struct *cinfo = &decoder->cinfo;
    decoder->error.status = OCELLI_JPEG_OK;
    decoder->error.message[0] = 0;
    decoder->error.hit_end_of_data = 0;
    if (setjmp(decoder->error.jump)) {
        jpeg_abort_decompress(cinfo);
        return decoder->error.status;
    }
    decoder->source.init_source = source_init;
    decoder->source.fill_input_buffer = source_fill;
    decoder->source.skip_input_data = source_skip;
    decoder->source.resync_to_restart = jpeg_resync_to_restart;
    decoder->source.term_source = source_term;
    decoder->source.next_input_byte = data;
    decoder->source.bytes_in_buffer = size;
    cinfo->src = &decoder->source;
    jpeg_read_header(cinfo, TRUE);

    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo->out_color_space = JCS_GRAYSCALE;
        *channels = 1;
        decoder->cmyk = 0;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo->out_color_space = JCS_CMYK;
        *channels = 3;
        decoder->cmyk = 1;
        break;
    default:
        cinfo->out_color_space = JCS_RGB;
        *channels = 3;
        decoder->cmyk = 0;
        break;
    }
    // libjpeg's defaults, stated so that a changed default cannot change our pixels.
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    cinfo->scale_num = 1;
    cinfo->scale_denom = 1;
    *width = (int)cinfo->image_width;
    *height = (int)cinfo->image_height;
    return OCELLI_JPEG_OK;
}

/// One CMYK row to RGB. Adobe writes CMYK JPEGs with inverted samples (0 = full ink), which is
/// what almost every CMYK JPEG in the wild is; otherwise samples are plain ink amounts.
static void cmyk_to_rgb(const unsigned char *cmyk, unsigned char *rgb, int width, int inverted) {
    for (int x = 0; x < width; x++) {
        unsigned c = cmyk[4 * x], m = cmyk[4 * x + 1], y = cmyk[4 * x + 2], k = cmyk[4 * x + 3];
        if (!inverted) {
            c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k;
        }
        rgb[3 * x] = (unsigned char)((c * k + 127) / 255);
        rgb[3 * x + 1] = (unsigned char)((m * k + 127) / 255);
        rgb[3 * x + 2] = (unsigned char)((y * k + 127) / 255);
    }
}

ocelli_jpeg_status ocelli_jpeg_read_pixels(ocelli_jpeg_decoder *decoder, unsigned char *pixels,
                                           size_t row_stride) {
    struct jpeg_decompress_struct *cinfo = &decoder->cinfo;
    decoder->error.status = OCELLI_JPEG_OK;
    decoder->error.message[0] = 0;
    if (setjmp(decoder->error.jump)) {
        jpeg_abort_decompress(cinfo);
        return decoder->error.status;
    }
    jpeg_start_decompress(cinfo);
    enum { batch = 16 };
    JSAMPROW rows[batch];
    const JDIMENSION width = cinfo->output_width;
    free(decoder->cmyk_rows);
    decoder->cmyk_rows = NULL;
    if (decoder->cmyk) {
        decoder->cmyk_rows = malloc((size_t)width * 4 * batch);
        if (!decoder->cmyk_rows) {
            jpeg_abort_decompress(cinfo);
            strcpy(decoder->error.message, "Insufficient memory for CMYK rows");
            return OCELLI_JPEG_OUT_OF_MEMORY;
        }
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        JDIMENSION first = cinfo->output_scanline;
        JDIMENSION count = cinfo->output_height - first;
        if (count > batch) count = batch;
        for (JDIMENSION i = 0; i < count; i++) {
            rows[i] = decoder->cmyk ? decoder->cmyk_rows + (size_t)i * width * 4
                                    : pixels + (size_t)(first + i) * row_stride;
        }
        JDIMENSION read = jpeg_read_scanlines(cinfo, rows, count);
        if (decoder->cmyk) {
            for (JDIMENSION i = 0; i < read; i++) {
                cmyk_to_rgb(rows[i], pixels + (size_t)(first + i) * row_stride, (int)width,
                            cinfo->saw_Adobe_marker);
            }
        }
    }
    // Every scanline is in. A single-scan Huffman image whose decoder never lacked a bit is
    // complete even if its EOI marker is missing. Multi-scan (progressive) and arithmetic-coded
    // images can end cleanly between scans, so for them running out of data means truncated.
    int single_scan = !cinfo->progressive_mode && !cinfo->arith_code && cinfo->comps_in_scan == cinfo->num_components;
    if (decoder->error.hit_end_of_data && !single_scan) {
        cinfo->err->msg_code = JWRN_JPEG_EOF;
        (*cinfo->err->format_message)((j_common_ptr)cinfo, decoder->error.message);
        jpeg_abort_decompress(cinfo);
        return OCELLI_JPEG_TRUNCATED;
    }
    // jpeg_finish_decompress would look for EOI; abort releases the same memory.
    jpeg_abort_decompress(cinfo);
    return OCELLI_JPEG_OK;
}

// MARK: Encoding

/// Everything the encoder changes after setjmp lives here, on the heap: automatic variables
/// modified between setjmp and longjmp have indeterminate values afterwards.
typedef struct {
    struct jpeg_compress_struct cinfo;
    error_manager error;
    unsigned char *buffer;  // grown by libjpeg's memory destination
    unsigned long size;
    unsigned char *scratch; // one RGB row, when RGBA input must be repacked
} encoder_state;

ocelli_jpeg_status ocelli_jpeg_encode(const unsigned char *pixels, int width, int height,
                                      int channels, size_t row_stride, int quality,
                                      unsigned char **output, size_t *output_size, char *message) {
    *output = NULL;
    *output_size = 0;
    message[0] = 0;
    encoder_state *state = calloc(1, sizeof(encoder_state));
    if (!state) {
        strcpy(message, "Insufficient memory");
        return OCELLI_JPEG_OUT_OF_MEMORY;
    }
    struct jpeg_compress_struct *cinfo = &state->cinfo;
    install_error_manager(&state->error);
    cinfo->err = &state->error.base;
    if (setjmp(state->error.jump)) {
        jpeg_destroy_compress(cinfo);
        strncpy(message, state->error.message, 199);
        message[199] = 0;
        ocelli_jpeg_status status = state->error.status;
        free(state->buffer);
        free(state->scratch);
        free(state);
        return status;
    }
    jpeg_create_compress(cinfo);
    jpeg_mem_dest(cinfo, &state->buffer, &state->size);
    cinfo->image_width = (JDIMENSION)width;
    cinfo->image_height = (JDIMENSION)height;
    int drop_alpha = 0;
    switch (channels) {
    case 1:
        cinfo->input_components = 1;
        cinfo->in_color_space = JCS_GRAYSCALE;
        break;
    case 4:
#ifdef JCS_EXTENSIONS
        cinfo->input_components = 4;
        cinfo->in_color_space = JCS_EXT_RGBX;
#else
        cinfo->input_components = 3;
        cinfo->in_color_space = JCS_RGB;
        drop_alpha = 1;
#endif
        break;
    default:
        cinfo->input_components = 3;
        cinfo->in_color_space = JCS_RGB;
        break;
    }
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    jpeg_start_compress(cinfo, TRUE);
    if (drop_alpha) {
        state->scratch = malloc((size_t)width * 3);
        if (!state->scratch) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
    }
    while (cinfo->next_scanline < cinfo->image_height) {
        const unsigned char *source = pixels + (size_t)cinfo->next_scanline * row_stride;
        JSAMPROW row;
        if (drop_alpha) {
            for (int x = 0; x < width; x++) {
                state->scratch[3 * x] = source[4 * x];
                state->scratch[3 * x + 1] = source[4 * x + 1];
                state->scratch[3 * x + 2] = source[4 * x + 2];
            }
            row = state->scratch;
        } else {
            row = (JSAMPROW)source;
        }
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    jpeg_destroy_compress(cinfo);
    *output = state->buffer;
    *output_size = (size_t)state->size;
    free(state->scratch);
    free(state);
    return OCELLI_JPEG_OK;
}

void ocelli_jpeg_free(void *buffer) { free(buffer); }
