//! Phonetic skeletons of personal names, the input of the blind indexes.
//!
//! The same person is written in Azerbaijani Latin (Məmmədova), in the Latin of
//! passports (Mammadova) and in Russian or Azerbaijani Cyrillic (Мамедова). A
//! letter-by-letter transliteration cannot make these equal, because Russian
//! renders one Azerbaijani sound by several letters and several sounds by one
//! letter (h and q both become г; q also к; c becomes дж; ə becomes а or е; ü
//! becomes ю or у). So every spelling is mapped to a Latin form and then reduced
//! to *phonetic classes*: letters the scripts confuse share one symbol.
//!
//! # Classes
//!
//! | Symbol | Letters |
//! |---|---|
//! | `A` | a ə e ä · а ә е э я (after a consonant) |
//! | `I` | i ı, y after a vowel · и ы і й ј |
//! | `U` | u ü · у ү ю (after a consonant) |
//! | `O` | o ö · о ө ё (after a consonant) |
//! | `K` | h x g ğ q k, kh gh · г ғ ҝ к қ х һ |
//! | `J` | c j, dj dzh zh · дж ж ҹ |
//! | `C` | ç, ch · ч ҷ |
//! | `S` | ş, sh · ш (щ = `S` `C`) |
//! | itself | b d f l m n p r s t v z (w = v, ц = t s) |
//!
//! Then, in order: repeated symbols collapse (Məmmədova = Mamedova); a `y` glide
//! between a consonant (or the start of the word) and a vowel is dropped, as
//! Russian я/ю/ё/е after a consonant carry no separate sound (Гюльнар =
//! Gülnar, Шукюров = Şükürov, Елена = Elena) while after a vowel it stays as `I`
//! (Aliyeva = Алиева); a `d` before `J` is dropped (Гаджи = Hacı); soft and hard
//! signs, apostrophes and diacritics not named above (via NFKD) are ignored.
//! Latin digraphs (sh, ch, zh) are read as such only in words without a letter
//! of the Azerbaijani alphabet (ə ş ç ğ ı İ), where `s`+`h` is two sounds (İshaq).
//!
//! # Known collisions
//!
//! Merging classes makes some different names share a skeleton. Those found
//! while designing this, all accepted because each class merge is needed for
//! the real spelling variants above:
//!
//! - `K` merges h with k and q: **Zakir / Zahir**, **Sahib / Saqib**.
//! - `A` merges e with a: **Emin / Amin**, **Elmira / Almira**.
//!
//! Known misses (same name, different skeleton): vowel changes beyond the classes
//! (Qasımov / Касумов, Məhəmməd / Магомед, Gözəl / Гезель), English `x`
//! (Alexander / Александр), and `Ishaq` written in ASCII, where `sh` reads as ş.
//!
//! A skeleton is nearly the name itself: it is computed in memory, fed to the
//! keyed hash, and must never be stored or logged.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Vowel class of a, ə, e.
const VOWEL_A: char = 'A';
/// Vowel class of i, ı and of y after a vowel.
const VOWEL_I: char = 'I';
/// Vowel class of o, ö.
const VOWEL_O: char = 'O';
/// Vowel class of u, ü.
const VOWEL_U: char = 'U';
/// A `y` glide before it is decided whether it is dropped or becomes `I`.
const GLIDE: char = 'Y';
/// The c/j/dж/ж class.
const AFFRICATE_J: char = 'J';

/// The phonetic skeleton of a name: one skeleton per name part, in the order
/// given, separated by single spaces. Public so that tests and diagnostics can
/// show *why* two spellings match.
///
/// The result is nearly the name itself: never store or log it.
pub fn name_skeleton(name: &str) -> String {
    name_part_skeletons(name).join(" ")
}

/// The skeletons of the parts of a name. Parts are separated by anything that
/// is neither a letter nor an apostrophe: spaces, hyphens, dots, commas.
pub(crate) fn name_part_skeletons(name: &str) -> Vec<String> {
    let composed: String = name.nfc().collect();
    composed
        .split(|character: char| !is_name_character(character))
        .map(part_skeleton)
        .filter(|skeleton| !skeleton.is_empty())
        .collect()
}

fn is_name_character(character: char) -> bool {
    character.is_alphabetic() || is_combining_mark(character) || is_ignored_mark(character)
}

/// Apostrophes and prime-like marks: written for soft signs or glottal stops,
/// ignored rather than splitting the word (Gul'nar = Gulnar).
fn is_ignored_mark(character: char) -> bool {
    matches!(
        character,
        '\'' | '\u{2019}'
            | '\u{2018}'
            | '\u{02BC}'
            | '\u{02BB}'
            | '\u{02B9}'
            | '\u{02BA}'
            | '`'
            | '\u{00B4}'
    )
}

fn part_skeleton(part: &str) -> String {
    let letters: Vec<char> = part.chars().flat_map(char::to_lowercase).collect();
    // U+0307 is the dot that lower-casing İ leaves behind: İ is Turkic too.
    let azerbaijani_orthography = letters
        .iter()
        .any(|letter| matches!(letter, 'ə' | 'ǝ' | 'ş' | 'ç' | 'ğ' | 'ı' | '\u{0307}'));
    let mut symbols = String::with_capacity(letters.len());
    let mut index = 0;
    while index < letters.len() {
        let letter = letters[index];
        if !azerbaijani_orthography
            && let Some(next) = letters.get(index + 1)
            && let Some(digraph) = latin_digraph(letter, *next)
        {
            symbols.push_str(digraph);
            index += 2;
            continue;
        }
        push_letter(letter, &mut symbols);
        index += 1;
    }
    reduce(&symbols)
}

/// Digraphs of passport and Russian-to-Latin spellings that stand for one
/// Azerbaijani letter. `kh` and `gh` need no rule: both letters are already `K`.
fn latin_digraph(first: char, second: char) -> Option<&'static str> {
    match (first, second) {
        ('s', 'h') => Some("S"),
        ('c', 'h') => Some("C"),
        ('z', 'h') => Some("J"),
        _ => None,
    }
}

fn push_letter(letter: char, symbols: &mut String) {
    if is_combining_mark(letter) || is_ignored_mark(letter) {
        return;
    }
    if let Some(mapped) = letter_symbols(letter) {
        symbols.push_str(mapped);
        return;
    }
    if !letter.is_alphabetic() {
        return;
    }
    // A letter the table does not name: drop its diacritics (é → e, ñ → n) and
    // map the base letter; a letter of another script stays itself, so it still
    // tells names apart.
    for base in std::iter::once(letter).nfkd() {
        if is_combining_mark(base) {
            continue;
        }
        for lower in base.to_lowercase() {
            match letter_symbols(lower) {
                Some(mapped) => symbols.push_str(mapped),
                None if lower.is_alphabetic() => symbols.push(lower),
                None => {}
            }
        }
    }
}

/// The class symbols of one lower-case letter; `None` for letters not in the
/// table. Cyrillic е, ё, ю, я start with a glide, decided later by context.
fn letter_symbols(letter: char) -> Option<&'static str> {
    let symbols = match letter {
        // Latin, including the Azerbaijani letters and the old ä for ə.
        'a' | 'e' | 'ə' | 'ǝ' | 'ä' => "A",
        'i' | 'ı' => "I",
        'o' | 'ö' => "O",
        'u' | 'ü' => "U",
        'y' => "Y",
        'h' | 'x' | 'g' | 'ğ' | 'q' | 'k' => "K",
        'c' | 'j' => "J",
        'ç' => "C",
        'ş' => "S",
        'w' => "v",
        'ß' => "s",
        'b' => "b",
        'd' => "d",
        'f' => "f",
        'l' => "l",
        'm' => "m",
        'n' => "n",
        'p' => "p",
        'r' => "r",
        's' => "s",
        't' => "t",
        'v' => "v",
        'z' => "z",
        // Russian and Azerbaijani Cyrillic (and a few neighbouring letters).
        'а' | 'ә' | 'э' => "A",
        'е' | 'є' => "YA",
        'я' => "YA",
        'ё' => "YO",
        'ю' => "YU",
        'ї' => "YI",
        'и' | 'ы' | 'і' => "I",
        'й' | 'ј' => "Y",
        'о' | 'ө' => "O",
        'у' | 'ү' | 'ұ' | 'ў' => "U",
        'г' | 'ғ' | 'ҝ' | 'к' | 'қ' | 'х' | 'һ' | 'ҳ' => "K",
        'ж' | 'ҹ' | 'џ' => "J",
        'ч' | 'ҷ' => "C",
        'ш' => "S",
        'щ' => "SC",
        'ц' => "ts",
        'б' => "b",
        'в' => "v",
        'д' => "d",
        'з' => "z",
        'л' => "l",
        'м' => "m",
        'н' | 'ң' => "n",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'ф' => "f",
        'ъ' | 'ь' => "",
        _ => return None,
    };
    Some(symbols)
}

fn is_vowel(symbol: char) -> bool {
    matches!(symbol, VOWEL_A | VOWEL_I | VOWEL_O | VOWEL_U)
}

/// Collapses repeats, resolves glides and the `d` of `dж`, collapses again.
fn reduce(symbols: &str) -> String {
    let mut collapsed: Vec<char> = symbols.chars().collect();
    collapsed.dedup();
    let mut reduced = Vec::with_capacity(collapsed.len());
    for (index, &symbol) in collapsed.iter().enumerate() {
        let previous = index.checked_sub(1).and_then(|at| collapsed.get(at));
        let next = collapsed.get(index + 1);
        if symbol == GLIDE {
            let before_vowel = next.is_some_and(|&next| is_vowel(next));
            let after_vowel = previous.is_some_and(|&previous| is_vowel(previous));
            if before_vowel && !after_vowel {
                continue;
            }
            reduced.push(VOWEL_I);
            continue;
        }
        if symbol == 'd' && next == Some(&AFFRICATE_J) {
            continue;
        }
        reduced.push(symbol);
    }
    reduced.dedup();
    reduced.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeletons_show_the_classes() {
        assert_eq!(name_skeleton("Məmmədova"), "mAmAdOvA");
        assert_eq!(name_skeleton("Мамедова"), "mAmAdOvA");
        assert_eq!(name_skeleton("Cəfərov"), "JAfArOv");
        assert_eq!(name_skeleton("Джафаров"), "JAfArOv");
        assert_eq!(name_skeleton("Гюльнар"), "KUlnAr");
        assert_eq!(name_skeleton("Алиева"), "AlIAvA");
    }

    #[test]
    fn parts_keep_their_order_and_separators_are_ignored() {
        assert_eq!(
            name_skeleton("  Aynur,\tMəmmədova-Əliyeva. "),
            "AInUr mAmAdOvA AlIAvA"
        );
        assert_eq!(name_skeleton("Gul'nar"), name_skeleton("Gulnar"));
        assert_eq!(name_skeleton("- ,. 123"), "");
    }

    #[test]
    fn case_and_decomposed_input_do_not_matter() {
        assert_eq!(name_skeleton("MƏMMƏDOVA"), name_skeleton("məmmədova"));
        assert_eq!(name_skeleton("İLHAM"), name_skeleton("ilham"));
        // ş typed as s + combining cedilla must stay ş, not become s.
        assert_eq!(name_skeleton("Ras\u{0327}id"), name_skeleton("Rəşid"));
        assert_eq!(name_skeleton("Rene\u{0301}"), name_skeleton("Rene"));
    }

    #[test]
    fn glides_follow_russian_soft_vowels() {
        assert_eq!(name_skeleton("Yusif"), name_skeleton("Юсиф"));
        assert_eq!(name_skeleton("İlyas"), name_skeleton("Ильяс"));
        assert_eq!(name_skeleton("Süleymanov"), name_skeleton("Сулейманов"));
        assert_eq!(name_skeleton("Ceyhun"), name_skeleton("Джейхун"));
        assert_eq!(name_skeleton("Hacı"), name_skeleton("Гаджи"));
        assert_eq!(name_skeleton("Ağayev"), name_skeleton("Агаев"));
    }

    #[test]
    fn azerbaijani_orthography_reads_s_h_as_two_letters() {
        assert_eq!(name_skeleton("İshaq"), name_skeleton("Исхак"));
        assert_ne!(name_skeleton("İshaq"), name_skeleton("İşaq"));
    }
}
