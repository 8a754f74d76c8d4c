//! Title similarity: normalised Levenshtein distance over characters, with cheap bounds
//! so that pairs that cannot reach a threshold are rejected before the O(n·m) table.

/// A title prepared for many comparisons: its characters and a 64-bit signature of
/// which characters occur (hashed into 64 buckets).
#[derive(Clone, Debug)]
pub struct Prepared {
    chars: Vec<char>,
    mask: u64,
    ascii: bool,
}

impl Prepared {
    pub fn new(s: &str) -> Prepared {
        let chars: Vec<char> = s.chars().collect();
        let mask = chars.iter().fold(0u64, |m, &c| {
            m | 1u64 << ((c as u32).wrapping_mul(0x9E37_79B1) >> 26)
        });
        Prepared {
            ascii: s.is_ascii(),
            chars,
            mask,
        }
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }
}

/// Similarity in 0..=1: `1 - distance / longer length`. Two empty strings are not
/// similar (there is nothing to compare).
pub fn similarity(a: &str, b: &str) -> f64 {
    similarity_at_least(&Prepared::new(a), &Prepared::new(b), 0.0).unwrap_or(0.0)
}

/// The similarity of `a` and `b` when it is at least `min`, else `None`.
pub fn similarity_at_least(a: &Prepared, b: &Prepared, min: f64) -> Option<f64> {
    let longest = a.len().max(b.len());
    if longest == 0 {
        return None;
    }
    // Largest distance that still scores >= min; the epsilon keeps 0.8 * 10 = 2 edits.
    let max_dist = ((1.0 - min) * longest as f64 + 1e-9).floor() as usize;
    if a.len().abs_diff(b.len()) > max_dist {
        return None;
    }
    // Each edit changes at most two of the signature bits (a substitution removes one
    // character and adds another), so differing bits / 2 bounds the distance from below.
    if ((a.mask ^ b.mask).count_ones() as usize).div_ceil(2) > max_dist {
        return None;
    }
    // Myers' algorithm with the shorter string as the pattern: one pass of word
    // operations per character of the longer one.
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let d = if short.ascii && long.ascii && !short.is_empty() && short.len() <= 64 {
        Some(myers(&short.chars, &long.chars)).filter(|&d| d <= max_dist)
    } else {
        bounded_levenshtein(&a.chars, &b.chars, max_dist)
    }?;
    Some(1.0 - d as f64 / longest as f64)
}

/// Levenshtein distance between ASCII `pattern` (1 to 64 characters) and ASCII `text`,
/// by Myers' bit-vector algorithm in Hyyrö's formulation for global distance.
fn myers(pattern: &[char], text: &[char]) -> usize {
    let m = pattern.len();
    // Built per comparison: far fewer pairs pass the bounds above than there are titles.
    let mut peq = [0u64; 128];
    for (i, &c) in pattern.iter().enumerate() {
        peq[c as usize & 127] |= 1 << i;
    }
    let last = 1u64 << (m - 1);
    let mut pv = u64::MAX;
    let mut mv = 0u64;
    let mut score = m;
    for &c in text {
        let eq = peq[c as usize & 127];
        let xv = eq | mv;
        let xh = ((eq & pv).wrapping_add(pv) ^ pv) | eq;
        let mut ph = mv | !(xh | pv);
        let mut mh = pv & xh;
        if ph & last != 0 {
            score += 1;
        } else if mh & last != 0 {
            score -= 1;
        }
        // Row 0 of the table grows by one per text character: shift in a +1.
        ph = (ph << 1) | 1;
        mh <<= 1;
        pv = mh | !(xv | ph);
        mv = ph & xv;
    }
    score
}

/// Levenshtein distance, or `None` as soon as it must exceed `max`.
fn bounded_levenshtein(a: &[char], b: &[char], max: usize) -> Option<usize> {
    let (a, b) = if a.len() > b.len() { (b, a) } else { (a, b) };
    if a.is_empty() {
        return (b.len() <= max).then_some(b.len());
    }
    let mut prev: Vec<usize> = (0..=a.len()).collect();
    let mut cur = vec![0usize; a.len() + 1];
    for (j, &cb) in b.iter().enumerate() {
        cur[0] = j + 1;
        let mut row_min = cur[0];
        for (i, &ca) in a.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[i + 1] = (prev[i] + cost).min(prev[i + 1] + 1).min(cur[i] + 1);
            row_min = row_min.min(cur[i + 1]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[a.len()];
    (d <= max).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lev(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        bounded_levenshtein(&a, &b, usize::MAX).unwrap()
    }

    #[test]
    fn distances() {
        assert_eq!(lev("", ""), 0);
        assert_eq!(lev("abc", ""), 3);
        assert_eq!(lev("kitten", "sitting"), 3);
        assert_eq!(lev("flaw", "lawn"), 2);
        assert_eq!(lev("straße", "strasse"), 2);
        assert_eq!(lev("ab", "ba"), 2);
    }

    #[test]
    fn bit_parallel_equals_table() {
        let mut rng = fastrand::Rng::with_seed(5);
        let alphabet: Vec<char> = "abcd eXz".chars().collect();
        for _ in 0..20_000 {
            let mk = |rng: &mut fastrand::Rng, n: usize| -> String {
                (0..n)
                    .map(|_| alphabet[rng.usize(..alphabet.len())])
                    .collect()
            };
            let (na, nb) = (rng.usize(1..=64), rng.usize(0..80));
            let a = mk(&mut rng, na);
            let b = mk(&mut rng, nb);
            let bc: Vec<char> = b.chars().collect();
            let ac: Vec<char> = a.chars().collect();
            assert_eq!(myers(&ac, &bc), lev(&a, &b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn scores() {
        assert_eq!(similarity("halo", "halo"), 1.0);
        assert_eq!(similarity("", ""), 0.0);
        assert!((similarity("crazy in love", "crazy in luv") - (1.0 - 2.0 / 13.0)).abs() < 1e-9);
        assert!(similarity("intro", "outro") < 0.7);
        assert!(similarity("halo", "halo remix") < 0.5);
    }

    #[test]
    fn bounds_never_reject_a_pair_that_passes() {
        // Compare the pruned result with the exact one over many random pairs.
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet: Vec<char> = "abcdeé ßxyz".chars().collect();
        for _ in 0..5000 {
            let mk = |rng: &mut fastrand::Rng| -> String {
                (0..rng.usize(0..12))
                    .map(|_| alphabet[rng.usize(..alphabet.len())])
                    .collect()
            };
            let (a, b) = (mk(&mut rng), mk(&mut rng));
            let longest = a.chars().count().max(b.chars().count());
            if longest == 0 {
                continue;
            }
            let exact = 1.0 - lev(&a, &b) as f64 / longest as f64;
            for min in [0.0, 0.5, 0.7, 0.8, 0.95, 1.0] {
                let got = similarity_at_least(&Prepared::new(&a), &Prepared::new(&b), min);
                if exact >= min - 1e-9 {
                    assert_eq!(got, Some(exact), "{a:?} {b:?} min {min}");
                } else {
                    assert_eq!(got, None, "{a:?} {b:?} min {min}");
                }
            }
        }
    }
}
