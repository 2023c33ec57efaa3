//! The simulator's prefix cache, vLLM's automatic prefix caching in miniature: a prompt is a
//! chain of fixed-size blocks of words (each block's hash covers every word before it), a new
//! prompt's leading blocks already cached are served from the cache, every full block is then
//! cached, and the least recently used blocks go past a capacity. Looked up as a request
//! arrives; a partial last block is never cached.

use std::collections::{BTreeMap, HashMap};

/// Cached blocks by chain hash, least recently used first out.
#[derive(Debug)]
pub struct PrefixCache {
    block_tokens: usize,
    capacity_blocks: usize,
    tick: u64,
    /// Chain hash → the tick it was last used at.
    used: HashMap<u64, u64>,
    /// Tick → chain hash, oldest first.
    order: BTreeMap<u64, u64>,
}

impl PrefixCache {
    /// A cache of `capacity_tokens` in blocks of `block_tokens` words.
    pub fn new(block_tokens: usize, capacity_tokens: u64) -> Self {
        let block_tokens = block_tokens.max(1);
        PrefixCache {
            block_tokens,
            capacity_blocks: (capacity_tokens / block_tokens as u64) as usize,
            tick: 0,
            used: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// The chain hashes of a prompt's full blocks.
    pub fn blocks<'a>(&self, words: impl Iterator<Item = &'a str>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut chain: u64 = 0xCBF2_9CE4_8422_2325;
        for (n, word) in words.enumerate() {
            for b in word.bytes().chain([b' ']) {
                chain = (chain ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
            }
            if (n + 1) % self.block_tokens == 0 {
                out.push(crate::seed::mix(chain, out.len() as u64));
            }
        }
        out
    }

    /// Tokens of a prompt's `blocks` served from the cache (its leading cached blocks); all
    /// of its blocks are then cached as the most recently used.
    pub fn serve(&mut self, blocks: &[u64]) -> u64 {
        let hits = blocks
            .iter()
            .take_while(|b| self.used.contains_key(b))
            .count();
        for &b in blocks {
            self.tick += 1;
            if let Some(old) = self.used.insert(b, self.tick) {
                self.order.remove(&old);
            }
            self.order.insert(self.tick, b);
        }
        while self.used.len() > self.capacity_blocks {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.used.remove(&oldest);
        }
        (hits * self.block_tokens) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> impl Iterator<Item = &str> {
        text.split_whitespace()
    }

    #[test]
    fn a_shared_prefix_is_served_in_whole_blocks_and_a_new_one_not_at_all() {
        let mut cache = PrefixCache::new(4, 1000);
        let a = cache.blocks(words("a b c d e f g h i j"));
        assert_eq!(
            a.len(),
            2,
            "two full blocks; the partial third is not cached"
        );
        assert_eq!(cache.serve(&a), 0, "nothing cached yet");
        assert_eq!(cache.serve(&a), 8, "the same prompt again: both blocks");
        // Shares the first block and a word of the second: one block.
        let b = cache.blocks(words("a b c d e x y z"));
        assert_eq!(cache.serve(&b), 4);
        // Its first word differs: nothing, though later words match (the chain covers all).
        let c = cache.blocks(words("q b c d e f g h"));
        assert_eq!(cache.serve(&c), 0);
    }

    #[test]
    fn the_least_recently_used_blocks_go_past_the_capacity() {
        let mut cache = PrefixCache::new(2, 4); // two blocks
        let a = cache.blocks(words("a a b b"));
        let b = cache.blocks(words("c c d d"));
        cache.serve(&a);
        cache.serve(&b); // a's blocks are out
        assert_eq!(cache.serve(&a), 0);
        assert_eq!(cache.serve(&a), 4);
    }
}
