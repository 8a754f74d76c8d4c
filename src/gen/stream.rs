//! Audio payload taken from a template and repeated to any length, cut only at unit
//! boundaries (MPEG frames, PCM sample frames) where the format has cheap ones.

use std::ops::Range;

pub struct Stream {
    data: Vec<u8>,
    /// Frame boundaries; empty means the payload may be cut at any multiple of `align`.
    units: Vec<Range<usize>>,
    align: usize,
}

impl Stream {
    pub fn bytes(data: Vec<u8>, align: usize) -> Self {
        assert!(!data.is_empty() && align > 0 && data.len().is_multiple_of(align));
        Self {
            data,
            units: Vec::new(),
            align,
        }
    }

    pub fn framed(data: Vec<u8>, units: Vec<Range<usize>>) -> Self {
        assert!(!units.is_empty());
        Self {
            data,
            units,
            align: 1,
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Rounds an apparent payload length to what this stream can represent.
    pub fn align_down(&self, n: u64) -> u64 {
        n - n % self.align as u64
    }

    /// At least `n` bytes (at least one unit) from the start of the payload, repeating it.
    pub fn forward(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + self.data.len().min(1 << 16));
        if self.units.is_empty() {
            let n = n.max(self.align);
            let n = n + (self.align - n % self.align) % self.align;
            while out.len() < n {
                let take = (n - out.len()).min(self.data.len());
                out.extend_from_slice(&self.data[..take]);
            }
        } else {
            for unit in self.units.iter().cycle() {
                out.extend_from_slice(&self.data[unit.clone()]);
                if out.len() >= n {
                    break;
                }
            }
        }
        out
    }

    /// At least `n` bytes ending with the last byte of the payload, repeating it backwards.
    pub fn backward(&self, n: usize) -> Vec<u8> {
        if self.units.is_empty() {
            let n = n.max(self.align);
            let n = n + (self.align - n % self.align) % self.align;
            let len = self.data.len();
            let mut out = Vec::with_capacity(n);
            out.extend_from_slice(&self.data[len - n % len..]);
            for _ in 0..n / len {
                out.extend_from_slice(&self.data);
            }
            out
        } else {
            let mut picked = Vec::new();
            let mut total = 0;
            for unit in self.units.iter().rev().cycle() {
                picked.push(unit.clone());
                total += unit.len();
                if total >= n {
                    break;
                }
            }
            let mut out = Vec::with_capacity(total);
            for unit in picked.into_iter().rev() {
                out.extend_from_slice(&self.data[unit]);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_streams_repeat_and_align() {
        let s = Stream::bytes((0..8).collect(), 2);
        assert_eq!(s.forward(11), [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3]);
        assert_eq!(s.backward(3), [4, 5, 6, 7]);
        assert_eq!(s.backward(10), [6, 7, 0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(s.forward(0).len(), 2);
    }

    #[test]
    fn framed_streams_cut_at_units() {
        let s = Stream::framed((0..6).collect(), vec![0..2, 2..6]);
        assert_eq!(s.forward(3), [0, 1, 2, 3, 4, 5]);
        assert_eq!(s.forward(7), [0, 1, 2, 3, 4, 5, 0, 1]);
        assert_eq!(s.backward(3), [2, 3, 4, 5]);
        assert_eq!(s.backward(5), [0, 1, 2, 3, 4, 5]);
    }
}
