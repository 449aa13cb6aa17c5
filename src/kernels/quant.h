/*
 * quant.h - GGUF/ggml weight types: conversion to and from f32, activation
 * quantization and plain-C reference dot products. Everything here is
 * bit-exact with ggml (llama.cpp c392e509) except vec_dot_ref, which sums in
 * a fixed scalar order (see docs/quantization.md for its tolerance).
 *
 * Used by: the model loader (dequantize, vec_dot_type), the matmul kernels
 * (reference beside their SIMD versions) and `inferd quantize`.
 *
 * Supported types: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1 Q2_K Q3_K Q4_K
 * Q5_K Q6_K Q8_K IQ4_NL IQ4_XS. Block layouts are in docs/quantization.md and
 * tests/data/quant/README.md. Row lengths n must be a multiple of the type's
 * block size (dtype_get(t)->block_size); the functions do not check it, their
 * callers (GGUF loader, quantize tool) validated the shapes.
 */
#ifndef KERNELS_QUANT_H
#define KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

/* IEEE half <-> float, exactly as ggml's GGML_FP16_TO_FP32 / GGML_FP32_TO_FP16
 * (round to nearest even; NaN and infinities kept). */
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
/* bfloat16 <-> float as ggml: round to nearest even, NaN forced quiet. */
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

/* Returns 1 if dequantize_row, quantize_row_ref and vec_dot_ref support t
 * (the types listed above), else 0. Q8_1 has no dequantization in ggml; we
 * provide one anyway (x = d*q). */
int quant_supported(enum dtype t);

/* Converts n elements (one or more whole blocks) of type t at src to f32.
 * Bit-exact with ggml's to_float. t must be supported. */
void dequantize_row(enum dtype t, const void *src, float *dst, int64_t n);

/* Quantizes n floats with ggml's reference quantizer (from_float_ref) into
 * dst (dtype_row_bytes(t, n) bytes). Returns 0, or INFERD_EINVAL when t is not
 * supported or n is not a multiple of the block size. */
int quantize_row_ref(enum dtype t, const float *src, void *dst, int64_t n);

/* Quantizes n_rows rows of n_per_row floats the way llama-quantize does
 * (ggml_quantize_chunk without an importance matrix). Identical to calling
 * quantize_row_ref per row except for IQ4_NL (which runs a scale search).
 * Returns the bytes written, or 0 when t is unsupported or n_per_row is not a
 * multiple of the block size. Single-threaded; callers split rows. */
size_t quantize_rows(enum dtype t, const float *src, void *dst, int64_t n_rows, int64_t n_per_row);

/* The format activations take for a dot product with weights of type t, as
 * ggml-cpu's vec_dot_type: Q8_0 (Q4_0 Q5_0 Q8_0 IQ4_NL), Q8_1 (Q4_1 Q5_1),
 * Q8_K (K-quants, IQ4_XS), F16, BF16 or F32 (F32). */
enum dtype quant_vec_dot_type(enum dtype t);

/* Quantizes an activation row of n floats into format vdt (one returned by
 * quant_vec_dot_type), bit-exact with ggml-cpu's from_float for that type. */
void quantize_row_act(enum dtype vdt, const float *x, void *y, int64_t n);

/* Plain-C reference dot product of n elements: one weight row of type t with
 * an activation row in format quant_vec_dot_type(t). Integer block sums are
 * scaled per block as ggml does, then accumulated in float in element order. */
float vec_dot_ref(enum dtype t, int64_t n, const void *w_row, const void *act_row);

#endif
