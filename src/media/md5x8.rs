//! MD5 of up to sixteen messages at once, one per 32-bit lane of an AVX-512 register
//! (or eight per AVX2 register where AVX-512 is missing).
//!
//! One MD5 is a serial chain of 64 dependent steps per block: a core runs it at about
//! 470 MB/s however wide it is, and it was 60% of every cycle the engines spent. Files
//! are independent, though, and the parallel engines hold many at once, so they hash eight
//! together: the same steps, eight lanes wide, several times the bytes per cycle. With
//! AVX-512 (detected at run time) sixteen go together, and each step is shorter: a
//! rotate is one instruction and each round function one three-input logic op. The
//! reference engine keeps the scalar `md-5` crate; the tests hold every path equal to it.

use md5::{Digest, Md5};

/// Messages an engine hands over at once: the lanes of the widest kernel. Without
/// AVX-512 they go through the eight-lane kernel in two halves, at the same cost.
pub const LANES: usize = 16;

/// Lanes of the AVX2 kernel.
const LANES8: usize = 8;

/// A message: the first part, then the second (the head and tail of a file).
pub type Parts<'a> = [&'a [u8]; 2];

/// Whether this CPU runs the eight-lane path; elsewhere everything is hashed one by one.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs the sixteen-lane path (AVX-512F).
pub fn available16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The MD5 digest of each message, in order.
pub fn digest_many(msgs: &[Parts]) -> Vec<[u8; 16]> {
    digest_with(msgs, available16(), available())
}

/// [`digest_many`] with the kernels chosen by the caller (the tests run each one).
fn digest_with(msgs: &[Parts], wide16: bool, wide8: bool) -> Vec<[u8; 16]> {
    let mut out = Vec::with_capacity(msgs.len());
    for chunk in msgs.chunks(16) {
        // Sixteen lanes cost the same however many are filled: from nine messages up
        // they beat two rounds of the eight-lane kernel.
        if wide16 && chunk.len() > LANES8 {
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: AVX-512F is present (the caller checked).
                unsafe { x86::digest16(chunk, &mut out) };
                continue;
            }
        }
        for part in chunk.chunks(LANES8) {
            // From two messages up the eight-lane path is cheaper per message than the
            // scalar one.
            if wide8 && part.len() >= 2 {
                #[cfg(target_arch = "x86_64")]
                {
                    // SAFETY: AVX2 is present (the caller checked).
                    unsafe { x86::digest8(part, &mut out) };
                    continue;
                }
            }
            out.extend(part.iter().map(digest_one));
        }
    }
    out
}

/// One message with the md-5 crate: the reference engine's hash, and the wide path's oracle.
pub fn digest_one(msg: &Parts) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(msg[0]);
    h.update(msg[1]);
    h.finalize().into()
}

/// A message as MD5 sees it: the parts, then 0x80, zeros, and the bit length.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Lane<'a> {
    parts: Parts<'a>,
    len: usize,
    blocks: usize,
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl<'a> Lane<'a> {
    fn new(parts: Parts<'a>) -> Lane<'a> {
        let len = parts[0].len() + parts[1].len();
        Lane {
            parts,
            len,
            // Room for the 0x80 byte and the 8-byte length.
            blocks: (len + 8) / 64 + 1,
        }
    }

    /// Block `k` of the padded message: borrowed from the parts when it lies whole in
    /// one, else assembled in `tmp`.
    fn block<'s>(&'s self, k: usize, tmp: &'s mut [u8; 64]) -> &'s [u8] {
        let start = k * 64;
        let [p, q] = self.parts;
        if start + 64 <= p.len() {
            &p[start..start + 64]
        } else if start >= p.len() && start + 64 <= self.len {
            &q[start - p.len()..start - p.len() + 64]
        } else {
            *tmp = [0; 64];
            self.edge(k, tmp);
            &tmp[..]
        }
    }

    /// A block that straddles the parts or holds padding, assembled byte by byte.
    fn edge(&self, k: usize, tmp: &mut [u8; 64]) {
        let start = k * 64;
        let end = start + 64;
        let mut base = 0;
        for part in self.parts {
            let (lo, hi) = (start.max(base), end.min(base + part.len()));
            if lo < hi {
                tmp[lo - start..hi - start].copy_from_slice(&part[lo - base..hi - base]);
            }
            base += part.len();
        }
        if (start..end).contains(&self.len) {
            tmp[self.len - start] = 0x80;
        }
        if k + 1 == self.blocks {
            tmp[56..].copy_from_slice(&(self.len as u64).wrapping_mul(8).to_le_bytes());
        }
    }
}

const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

#[rustfmt::skip]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{INIT, K, LANES8 as LANES, Lane, Parts};

    /// Hash two to eight messages; lanes whose message has ended keep their state.
    #[target_feature(enable = "avx2")]
    pub(super) fn digest8(chunk: &[Parts], out: &mut Vec<[u8; 16]>) {
        let lanes: Vec<Lane> = chunk.iter().map(|p| Lane::new(*p)).collect();
        let blocks = lanes.iter().map(|l| l.blocks).max().unwrap_or(0);
        let mut state = INIT.map(|v| _mm256_set1_epi32(v as i32));
        let mut tmp = [[0u8; 64]; LANES];
        for k in 0..blocks {
            let mut frozen = [0i32; LANES];
            let mut rows = [std::ptr::null::<u8>(); LANES];
            for (col, (t, f)) in tmp.iter_mut().zip(&mut frozen).enumerate() {
                rows[col] = match lanes.get(col) {
                    Some(lane) if k < lane.blocks => lane.block(k, t).as_ptr(),
                    _ => {
                        *f = -1;
                        t.as_ptr()
                    }
                };
            }
            // SAFETY: every row points at 64 readable bytes (a part or `tmp`).
            let w = unsafe { transpose(&rows) };
            let before = state;
            compress(&mut state, &w);
            if frozen.iter().any(|&f| f != 0) {
                // SAFETY: reads eight i32 from a local array.
                let mask = unsafe { _mm256_loadu_si256(frozen.as_ptr().cast()) };
                for (s, b) in state.iter_mut().zip(before) {
                    *s = _mm256_blendv_epi8(*s, b, mask);
                }
            }
        }
        let mut words = [[0u32; LANES]; 4];
        for (dst, s) in words.iter_mut().zip(state) {
            // SAFETY: writes eight u32 into a local array.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), s) };
        }
        for col in 0..lanes.len() {
            let mut d = [0u8; 16];
            for (i, word) in words.iter().enumerate() {
                d[i * 4..i * 4 + 4].copy_from_slice(&word[col].to_le_bytes());
            }
            out.push(d);
        }
    }

    /// Hash nine to sixteen messages; lanes whose message has ended keep their state.
    #[target_feature(enable = "avx512f")]
    pub(super) fn digest16(chunk: &[Parts], out: &mut Vec<[u8; 16]>) {
        const N: usize = 16;
        let lanes: Vec<Lane> = chunk.iter().map(|p| Lane::new(*p)).collect();
        let blocks = lanes.iter().map(|l| l.blocks).max().unwrap_or(0);
        let mut state = INIT.map(|v| _mm512_set1_epi32(v as i32));
        let mut tmp = [[0u8; 64]; N];
        for k in 0..blocks {
            let mut live: u16 = 0;
            let mut rows = [std::ptr::null::<u8>(); N];
            for (col, t) in tmp.iter_mut().enumerate() {
                rows[col] = match lanes.get(col) {
                    Some(lane) if k < lane.blocks => {
                        live |= 1 << col;
                        lane.block(k, t).as_ptr()
                    }
                    _ => t.as_ptr(),
                };
            }
            // SAFETY: every row points at 64 readable bytes (a part or `tmp`).
            let w = unsafe { transpose16(&rows) };
            let before = state;
            compress16(&mut state, &w);
            if live != u16::MAX {
                for (s, b) in state.iter_mut().zip(before) {
                    *s = _mm512_mask_blend_epi32(live, b, *s);
                }
            }
        }
        let mut words = [[0u32; N]; 4];
        for (dst, s) in words.iter_mut().zip(state) {
            // SAFETY: writes sixteen u32 into a local array.
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), s) };
        }
        for col in 0..lanes.len() {
            let mut d = [0u8; 16];
            for (i, word) in words.iter().enumerate() {
                d[i * 4..i * 4 + 4].copy_from_slice(&word[col].to_le_bytes());
            }
            out.push(d);
        }
    }

    /// Sixteen 64-byte blocks, one per lane, as sixteen vectors: vector `j` holds word `j`
    /// of every lane. A 16x16 transpose of 32-bit words in registers (gathers from a
    /// copy were slower than the eight-lane kernel: the copy's stores stall them).
    ///
    /// # Safety
    /// Each pointer must be valid for reading 64 bytes.
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose16(rows: &[*const u8; 16]) -> [__m512i; 16] {
        // SAFETY: the caller's promise.
        let r: [__m512i; 16] =
            std::array::from_fn(|i| unsafe { _mm512_loadu_si512(rows[i].cast()) });
        // Per 128-bit lane L: t[2p], t[2p+1] interleave rows 2p and 2p+1.
        let t: [__m512i; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_epi32(a, b)
            } else {
                _mm512_unpackhi_epi32(a, b)
            }
        });
        // u[4q + m], lane L: word 4L + m of rows 4q..4q+3.
        let u: [__m512i; 16] = std::array::from_fn(|i| {
            let (q, m) = (i / 4, i % 4);
            let (a, b) = (t[4 * q + m / 2], t[4 * q + 2 + m / 2]);
            if m % 2 == 0 {
                _mm512_unpacklo_epi64(a, b)
            } else {
                _mm512_unpackhi_epi64(a, b)
            }
        });
        let mut w = [_mm512_setzero_si512(); 16];
        for m in 0..4 {
            let x = _mm512_shuffle_i32x4::<0x44>(u[m], u[4 + m]);
            let y = _mm512_shuffle_i32x4::<0xee>(u[m], u[4 + m]);
            let x2 = _mm512_shuffle_i32x4::<0x44>(u[8 + m], u[12 + m]);
            let y2 = _mm512_shuffle_i32x4::<0xee>(u[8 + m], u[12 + m]);
            w[m] = _mm512_shuffle_i32x4::<0x88>(x, x2);
            w[4 + m] = _mm512_shuffle_i32x4::<0xdd>(x, x2);
            w[8 + m] = _mm512_shuffle_i32x4::<0x88>(y, y2);
            w[12 + m] = _mm512_shuffle_i32x4::<0xdd>(y, y2);
        }
        w
    }

    /// One 64-byte block of sixteen messages: `w[j]` holds word `j` of each. The round
    /// functions are single `vpternlogd` ops (their truth tables as the immediate) and
    /// the rotate is `vprold`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::many_single_char_names)]
    fn compress16(state: &mut [__m512i; 4], w: &[__m512i; 16]) {
        let [mut a, mut b, mut c, mut d] = *state;
        macro_rules! step {
            ($imm:literal, $a:ident, $b:ident, $c:ident, $d:ident, $g:literal, $i:literal, $s:literal) => {
                let t = _mm512_add_epi32(
                    _mm512_add_epi32($a, _mm512_add_epi32(w[$g], _mm512_set1_epi32(K[$i] as i32))),
                    _mm512_ternarylogic_epi32::<$imm>($b, $c, $d),
                );
                $a = _mm512_add_epi32($b, _mm512_rol_epi32::<$s>(t));
            };
        }
        // F = b ? c : d (0xca); H = b ^ c ^ d (0x96); I = c ^ (b | !d) (0x39).
        // G = d ? b : c, written as F's select with the operands turned: (d, b, c).
        macro_rules! g {
            ($a:ident, $b:ident, $c:ident, $d:ident, $g:literal, $i:literal, $s:literal) => {
                let t = _mm512_add_epi32(
                    _mm512_add_epi32($a, _mm512_add_epi32(w[$g], _mm512_set1_epi32(K[$i] as i32))),
                    _mm512_ternarylogic_epi32::<0xca>($d, $b, $c),
                );
                $a = _mm512_add_epi32($b, _mm512_rol_epi32::<$s>(t));
            };
        }
        step!(0xca, a, b, c, d, 0, 0, 7);
        step!(0xca, d, a, b, c, 1, 1, 12);
        step!(0xca, c, d, a, b, 2, 2, 17);
        step!(0xca, b, c, d, a, 3, 3, 22);
        step!(0xca, a, b, c, d, 4, 4, 7);
        step!(0xca, d, a, b, c, 5, 5, 12);
        step!(0xca, c, d, a, b, 6, 6, 17);
        step!(0xca, b, c, d, a, 7, 7, 22);
        step!(0xca, a, b, c, d, 8, 8, 7);
        step!(0xca, d, a, b, c, 9, 9, 12);
        step!(0xca, c, d, a, b, 10, 10, 17);
        step!(0xca, b, c, d, a, 11, 11, 22);
        step!(0xca, a, b, c, d, 12, 12, 7);
        step!(0xca, d, a, b, c, 13, 13, 12);
        step!(0xca, c, d, a, b, 14, 14, 17);
        step!(0xca, b, c, d, a, 15, 15, 22);
        g!(a, b, c, d, 1, 16, 5);
        g!(d, a, b, c, 6, 17, 9);
        g!(c, d, a, b, 11, 18, 14);
        g!(b, c, d, a, 0, 19, 20);
        g!(a, b, c, d, 5, 20, 5);
        g!(d, a, b, c, 10, 21, 9);
        g!(c, d, a, b, 15, 22, 14);
        g!(b, c, d, a, 4, 23, 20);
        g!(a, b, c, d, 9, 24, 5);
        g!(d, a, b, c, 14, 25, 9);
        g!(c, d, a, b, 3, 26, 14);
        g!(b, c, d, a, 8, 27, 20);
        g!(a, b, c, d, 13, 28, 5);
        g!(d, a, b, c, 2, 29, 9);
        g!(c, d, a, b, 7, 30, 14);
        g!(b, c, d, a, 12, 31, 20);
        step!(0x96, a, b, c, d, 5, 32, 4);
        step!(0x96, d, a, b, c, 8, 33, 11);
        step!(0x96, c, d, a, b, 11, 34, 16);
        step!(0x96, b, c, d, a, 14, 35, 23);
        step!(0x96, a, b, c, d, 1, 36, 4);
        step!(0x96, d, a, b, c, 4, 37, 11);
        step!(0x96, c, d, a, b, 7, 38, 16);
        step!(0x96, b, c, d, a, 10, 39, 23);
        step!(0x96, a, b, c, d, 13, 40, 4);
        step!(0x96, d, a, b, c, 0, 41, 11);
        step!(0x96, c, d, a, b, 3, 42, 16);
        step!(0x96, b, c, d, a, 6, 43, 23);
        step!(0x96, a, b, c, d, 9, 44, 4);
        step!(0x96, d, a, b, c, 12, 45, 11);
        step!(0x96, c, d, a, b, 15, 46, 16);
        step!(0x96, b, c, d, a, 2, 47, 23);
        step!(0x39, a, b, c, d, 0, 48, 6);
        step!(0x39, d, a, b, c, 7, 49, 10);
        step!(0x39, c, d, a, b, 14, 50, 15);
        step!(0x39, b, c, d, a, 5, 51, 21);
        step!(0x39, a, b, c, d, 12, 52, 6);
        step!(0x39, d, a, b, c, 3, 53, 10);
        step!(0x39, c, d, a, b, 10, 54, 15);
        step!(0x39, b, c, d, a, 1, 55, 21);
        step!(0x39, a, b, c, d, 8, 56, 6);
        step!(0x39, d, a, b, c, 15, 57, 10);
        step!(0x39, c, d, a, b, 6, 58, 15);
        step!(0x39, b, c, d, a, 13, 59, 21);
        step!(0x39, a, b, c, d, 4, 60, 6);
        step!(0x39, d, a, b, c, 11, 61, 10);
        step!(0x39, c, d, a, b, 2, 62, 15);
        step!(0x39, b, c, d, a, 9, 63, 21);
        state[0] = _mm512_add_epi32(state[0], a);
        state[1] = _mm512_add_epi32(state[1], b);
        state[2] = _mm512_add_epi32(state[2], c);
        state[3] = _mm512_add_epi32(state[3], d);
    }

    /// Eight 64-byte blocks, one per lane, as sixteen vectors: vector `j` holds word `j`
    /// of every lane (two 8x8 transposes of 32-bit words).
    ///
    /// # Safety
    /// Each pointer must be valid for reading 64 bytes.
    #[target_feature(enable = "avx2")]
    unsafe fn transpose(rows: &[*const u8; LANES]) -> [__m256i; 16] {
        let mut w = [_mm256_setzero_si256(); 16];
        for half in 0..2 {
            // SAFETY: the caller's promise; 32 bytes at offset 0 or 32 of each block.
            let r: [__m256i; LANES] = std::array::from_fn(|i| unsafe {
                _mm256_loadu_si256(rows[i].add(half * 32).cast())
            });
            let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
            let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
            let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
            let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
            let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
            let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
            let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
            let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
            let u0 = _mm256_unpacklo_epi64(t0, t2);
            let u1 = _mm256_unpackhi_epi64(t0, t2);
            let u2 = _mm256_unpacklo_epi64(t1, t3);
            let u3 = _mm256_unpackhi_epi64(t1, t3);
            let u4 = _mm256_unpacklo_epi64(t4, t6);
            let u5 = _mm256_unpackhi_epi64(t4, t6);
            let u6 = _mm256_unpacklo_epi64(t5, t7);
            let u7 = _mm256_unpackhi_epi64(t5, t7);
            let o = half * 8;
            w[o] = _mm256_permute2x128_si256::<0x20>(u0, u4);
            w[o + 1] = _mm256_permute2x128_si256::<0x20>(u1, u5);
            w[o + 2] = _mm256_permute2x128_si256::<0x20>(u2, u6);
            w[o + 3] = _mm256_permute2x128_si256::<0x20>(u3, u7);
            w[o + 4] = _mm256_permute2x128_si256::<0x31>(u0, u4);
            w[o + 5] = _mm256_permute2x128_si256::<0x31>(u1, u5);
            w[o + 6] = _mm256_permute2x128_si256::<0x31>(u2, u6);
            w[o + 7] = _mm256_permute2x128_si256::<0x31>(u3, u7);
        }
        w
    }

    /// One 64-byte block of eight messages: `w[j]` holds word `j` of each.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::many_single_char_names)]
    fn compress(state: &mut [__m256i; 4], w: &[__m256i; 16]) {
        let ones = _mm256_set1_epi32(-1);
        let [mut a, mut b, mut c, mut d] = *state;
        macro_rules! f {
            ($b:ident, $c:ident, $d:ident) => {
                _mm256_xor_si256($d, _mm256_and_si256($b, _mm256_xor_si256($c, $d)))
            };
        }
        macro_rules! g {
            ($b:ident, $c:ident, $d:ident) => {
                _mm256_xor_si256($c, _mm256_and_si256($d, _mm256_xor_si256($b, $c)))
            };
        }
        macro_rules! h {
            ($b:ident, $c:ident, $d:ident) => {
                _mm256_xor_si256(_mm256_xor_si256($b, $c), $d)
            };
        }
        macro_rules! i {
            ($b:ident, $c:ident, $d:ident) => {
                _mm256_xor_si256($c, _mm256_or_si256($b, _mm256_xor_si256($d, ones)))
            };
        }
        macro_rules! step {
            ($fn:ident, $a:ident, $b:ident, $c:ident, $d:ident, $g:literal, $i:literal, $s:literal) => {
                // The round function last: it waits on the step before, the rest not.
                let t = _mm256_add_epi32(
                    _mm256_add_epi32($a, _mm256_add_epi32(w[$g], _mm256_set1_epi32(K[$i] as i32))),
                    $fn!($b, $c, $d),
                );
                $a = _mm256_add_epi32(
                    $b,
                    _mm256_or_si256(
                        _mm256_slli_epi32::<$s>(t),
                        _mm256_srli_epi32::<{ 32 - $s }>(t),
                    ),
                );
            };
        }

        step!(f, a, b, c, d, 0, 0, 7);
        step!(f, d, a, b, c, 1, 1, 12);
        step!(f, c, d, a, b, 2, 2, 17);
        step!(f, b, c, d, a, 3, 3, 22);
        step!(f, a, b, c, d, 4, 4, 7);
        step!(f, d, a, b, c, 5, 5, 12);
        step!(f, c, d, a, b, 6, 6, 17);
        step!(f, b, c, d, a, 7, 7, 22);
        step!(f, a, b, c, d, 8, 8, 7);
        step!(f, d, a, b, c, 9, 9, 12);
        step!(f, c, d, a, b, 10, 10, 17);
        step!(f, b, c, d, a, 11, 11, 22);
        step!(f, a, b, c, d, 12, 12, 7);
        step!(f, d, a, b, c, 13, 13, 12);
        step!(f, c, d, a, b, 14, 14, 17);
        step!(f, b, c, d, a, 15, 15, 22);
        step!(g, a, b, c, d, 1, 16, 5);
        step!(g, d, a, b, c, 6, 17, 9);
        step!(g, c, d, a, b, 11, 18, 14);
        step!(g, b, c, d, a, 0, 19, 20);
        step!(g, a, b, c, d, 5, 20, 5);
        step!(g, d, a, b, c, 10, 21, 9);
        step!(g, c, d, a, b, 15, 22, 14);
        step!(g, b, c, d, a, 4, 23, 20);
        step!(g, a, b, c, d, 9, 24, 5);
        step!(g, d, a, b, c, 14, 25, 9);
        step!(g, c, d, a, b, 3, 26, 14);
        step!(g, b, c, d, a, 8, 27, 20);
        step!(g, a, b, c, d, 13, 28, 5);
        step!(g, d, a, b, c, 2, 29, 9);
        step!(g, c, d, a, b, 7, 30, 14);
        step!(g, b, c, d, a, 12, 31, 20);
        step!(h, a, b, c, d, 5, 32, 4);
        step!(h, d, a, b, c, 8, 33, 11);
        step!(h, c, d, a, b, 11, 34, 16);
        step!(h, b, c, d, a, 14, 35, 23);
        step!(h, a, b, c, d, 1, 36, 4);
        step!(h, d, a, b, c, 4, 37, 11);
        step!(h, c, d, a, b, 7, 38, 16);
        step!(h, b, c, d, a, 10, 39, 23);
        step!(h, a, b, c, d, 13, 40, 4);
        step!(h, d, a, b, c, 0, 41, 11);
        step!(h, c, d, a, b, 3, 42, 16);
        step!(h, b, c, d, a, 6, 43, 23);
        step!(h, a, b, c, d, 9, 44, 4);
        step!(h, d, a, b, c, 12, 45, 11);
        step!(h, c, d, a, b, 15, 46, 16);
        step!(h, b, c, d, a, 2, 47, 23);
        step!(i, a, b, c, d, 0, 48, 6);
        step!(i, d, a, b, c, 7, 49, 10);
        step!(i, c, d, a, b, 14, 50, 15);
        step!(i, b, c, d, a, 5, 51, 21);
        step!(i, a, b, c, d, 12, 52, 6);
        step!(i, d, a, b, c, 3, 53, 10);
        step!(i, c, d, a, b, 10, 54, 15);
        step!(i, b, c, d, a, 1, 55, 21);
        step!(i, a, b, c, d, 8, 56, 6);
        step!(i, d, a, b, c, 15, 57, 10);
        step!(i, c, d, a, b, 6, 58, 15);
        step!(i, b, c, d, a, 13, 59, 21);
        step!(i, a, b, c, d, 4, 60, 6);
        step!(i, d, a, b, c, 11, 61, 10);
        step!(i, c, d, a, b, 2, 62, 15);
        step!(i, b, c, d, a, 9, 63, 21);
        state[0] = _mm256_add_epi32(state[0], a);
        state[1] = _mm256_add_epi32(state[1], b);
        state[2] = _mm256_add_epi32(state[2], c);
        state[3] = _mm256_add_epi32(state[3], d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| rng.u8(..)).collect()
    }

    #[test]
    fn known_vectors() {
        let fox: Parts = [b"The quick brown fox ", b"jumps over the lazy dog"];
        let empty: Parts = [b"", b""];
        let got = digest_many(&[fox, empty, fox]);
        assert_eq!(got[0], digest_one(&fox));
        assert_eq!(hex(&got[0]), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(hex(&got[1]), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(got[2], got[0]);
    }

    fn hex(d: &[u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Every padding edge (55, 56, 63, 64 bytes...), splits inside and on block
    /// boundaries, lanes of different lengths in one batch, and batches of 1 to 11.
    #[test]
    fn equals_the_scalar_md5_for_every_length_and_split() {
        let data = bytes(150_000, 7);
        let mut lens: Vec<usize> = (0..=130).collect();
        lens.extend([
            183, 191, 192, 247, 1000, 65_535, 65_536, 65_600, 131_072, 139_999,
        ]);
        let mut msgs: Vec<Parts> = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            for split in [0, len / 2, len.saturating_sub(1), len, (i * 37) % (len + 1)] {
                let m = &data[i..i + len];
                msgs.push([&m[..split], &m[split..]]);
            }
        }
        for n in [1, 2, 3, 7, 8, 9, 11, 16, 17, 31, msgs.len()] {
            for window in msgs.chunks(n).take(40) {
                let got = digest_many(window);
                let want: Vec<_> = window.iter().map(digest_one).collect();
                assert_eq!(got, want, "batch of {n}");
            }
        }
        // The engines' case: eight 64 KiB heads and tails, all different.
        let heads: Vec<Vec<u8>> = (0..8).map(|s| bytes(65_536, s)).collect();
        let tails: Vec<Vec<u8>> = (0..8).map(|s| bytes(65_536, 100 + s)).collect();
        let msgs: Vec<Parts> = heads
            .iter()
            .zip(&tails)
            .map(|(h, t)| [&h[..], &t[..]])
            .collect();
        let want: Vec<_> = msgs.iter().map(digest_one).collect();
        assert_eq!(digest_many(&msgs), want);
    }

    /// Each kernel this CPU has, forced, against the md-5 crate: seeded random lengths
    /// (short, around the padding edges, up to two 64 KiB chunks) and splits, in batches
    /// of every size from 1 to 33 so that lanes end at different blocks.
    #[test]
    fn every_kernel_equals_md5_on_random_messages() {
        let data = bytes(140_000, 11);
        let mut rng = fastrand::Rng::with_seed(5);
        let msgs: Vec<Parts> = (0..600)
            .map(|_| {
                let len = match rng.u8(..4) {
                    0 => rng.usize(..200),
                    1 => rng.usize(50..70) + 64 * rng.usize(..4),
                    2 => rng.usize(..8192),
                    _ => rng.usize(..=131_072),
                };
                let start = rng.usize(..=data.len() - len);
                let split = rng.usize(..=len);
                let m = &data[start..start + len];
                [&m[..split], &m[split..]]
            })
            .collect();
        let want: Vec<_> = msgs.iter().map(digest_one).collect();
        let mut kernels = vec![(false, false)];
        if available() {
            kernels.push((false, true));
        }
        if available16() {
            kernels.push((true, false));
            kernels.push((true, true));
        } else {
            eprintln!("no AVX-512F on this CPU: the sixteen-lane kernel is not tested here");
        }
        for (wide16, wide8) in kernels {
            let mut at = 0;
            for n in (1..=33).cycle() {
                if at >= msgs.len() {
                    break;
                }
                let end = (at + n).min(msgs.len());
                let got = digest_with(&msgs[at..end], wide16, wide8);
                assert_eq!(
                    got,
                    want[at..end],
                    "wide16 {wide16} wide8 {wide8}, batch of {n}"
                );
                at = end;
            }
        }
    }
}
