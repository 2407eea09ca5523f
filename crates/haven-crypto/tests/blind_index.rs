//! Blind indexes for duplicate search: spellings of one name in Azerbaijani
//! Latin, passport Latin and Cyrillic match; different names do not.

use std::collections::HashSet;

use haven_crypto::{BlindIndex, BlindIndexKey, BlindIndexKind, BlindIndexValue, name_skeleton};

const NAME_VARIANTS: &str = include_str!("data/name-variants.csv");

/// Pairs of different, common Azerbaijani and Russian names and surnames that
/// must never share a skeleton.
const DIFFERENT_NAMES: &[(&str, &str)] = &[
    ("Aliyev", "Quliyev"),
    ("Həsənov", "Hüseynov"),
    ("Məmmədov", "Mahmudov"),
    ("Aynur", "Aygün"),
    ("Rəşid", "Rəşad"),
    ("Cavid", "Cavad"),
    ("Kərimov", "Kazımov"),
    ("Qasımov", "Həsənov"),
    ("Əhmədov", "Məmmədov"),
    ("İsmayılov", "İsgəndərov"),
    ("Nəsibov", "Nəsirov"),
    ("Abbasov", "Babayev"),
    ("Orxan", "Osman"),
    ("Elçin", "Elşən"),
    ("Elnur", "Elmir"),
    ("Vüsal", "Vüqar"),
    ("Tural", "Turan"),
    ("Leyla", "Lalə"),
    ("Günel", "Gülnar"),
    ("Nigar", "Nərgiz"),
    ("Samir", "Sabir"),
    ("Fərid", "Fərhad"),
    ("Nurlan", "Nurana"),
    ("Zaur", "Zakir"),
    ("Rauf", "Rüfət"),
    ("Sevinc", "Sevil"),
    ("Aysel", "Aytən"),
    ("Xədicə", "Xatirə"),
    ("Kamran", "Kamal"),
    ("Hacıyev", "Qafarov"),
    ("Ibrahimov", "Ivanov"),
    ("Петров", "Пиров"),
    ("Ruslan", "Rüstəm"),
    ("Olga", "Ülviyyə"),
    ("Tatyana", "Tahirə"),
    ("Xəyalə", "Xalidə"),
    ("Şahin", "Sahib"),
    ("Şamil", "Camal"),
    ("Çingiz", "Cəngiz"),
    ("Məmmədov", "Məmmədova"),
    ("Аслан", "Асиф"),
    ("Джамиля", "Жанна"),
    ("Sevda", "Səbinə"),
    ("Əli", "Ülvi"),
    ("Murad", "Mirzə"),
    ("Anar", "Anna"),
    ("Natiq", "Nadir"),
    ("Rəna", "Rəhilə"),
    ("Yusif", "Yunis"),
    ("Əsəd", "Əziz"),
];

fn index_with_new_key() -> Result<BlindIndex, haven_crypto::CryptoError> {
    Ok(BlindIndex::new(&BlindIndexKey::generate()?))
}

fn variant_rows() -> Vec<[&'static str; 3]> {
    NAME_VARIANTS
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let columns: Vec<&str> = line.split(',').map(str::trim).collect();
            assert_eq!(columns.len(), 3, "row {line:?} has three columns");
            [columns[0], columns[1], columns[2]]
        })
        .collect()
}

fn full_name_value(index: &BlindIndex, name: &str, year: Option<i32>) -> Option<BlindIndexValue> {
    index
        .values(name, year)
        .into_iter()
        .find(|value| value.kind() == BlindIndexKind::FullName)
}

#[test]
fn the_variant_list_has_every_row() {
    assert_eq!(variant_rows().len(), 12);
}

#[test]
fn every_spelling_in_a_row_has_the_same_skeleton() {
    for row in variant_rows() {
        let skeletons = row.map(name_skeleton);
        assert!(
            skeletons.iter().all(|skeleton| skeleton == &skeletons[0]),
            "{row:?} gave {skeletons:?}"
        );
    }
}

#[test]
fn every_spelling_in_a_row_has_the_same_blind_index_values() -> Result<(), haven_crypto::CryptoError>
{
    let index = index_with_new_key()?;
    for row in variant_rows() {
        let values = row.map(|name| index.values(name, Some(1994)));
        assert_eq!(values[0].len(), 2, "one full-name and one part value");
        assert!(
            values.iter().all(|value| value == &values[0]),
            "{row:?} gave different values"
        );
    }
    Ok(())
}

/// Spellings the variant list lacks but a deployment will meet: the same
/// Russian and passport conventions applied to other common names.
const MORE_VARIANTS: &[&[&str]] = &[
    &["Həsənov", "Hasanov", "Гасанов", "Gasanov"],
    &["Hacıyev", "Hajiyev", "Гаджиев", "Gadzhiev"],
    &["Hüseynov", "Guseynov", "Hüseyinov"],
    &["Vüqar", "Vugar", "Вугар"],
    &["Nigar", "Нигяр"],
    &["Kəmalə", "Kamala", "Кямаля"],
    &["Ülviyyə", "Ulviyya", "Ульвия"],
    &["Eyvazov", "Эйвазов"],
    &["Abdullayev", "Абдуллаев"],
    &["Nəcəf", "Najaf", "Наджаф"],
    &["Bağırov", "Baghirov", "Багиров"],
    &["Əsgərov", "Asgarov", "Аскеров"],
    &["Tofiq", "Tofig", "Тофик"],
    &["Şəhla", "Shahla", "Шахла"],
    &["Yeganə", "Yegana", "Егана"],
    &["Ceyhun", "Jeyhun", "Джейхун"],
    &["Yusif", "Юсиф"],
    &["İlyas", "Ilyas", "Ильяс"],
    &["Süleymanov", "Suleymanov", "Сулейманов"],
    &["Elçin", "Elchin", "Эльчин"],
    &["Ağayev", "Agayev", "Агаев"],
    &["Ayyub", "Əyyub", "Айюб"],
];

#[test]
fn common_spellings_beyond_the_list_match() {
    for spellings in MORE_VARIANTS {
        let expected = name_skeleton(spellings[0]);
        for spelling in spellings.iter() {
            assert_eq!(
                name_skeleton(spelling),
                expected,
                "{spelling} vs {}",
                spellings[0]
            );
        }
    }
}

#[test]
fn names_of_different_rows_do_not_match() -> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    let rows = variant_rows();
    for (position, row) in rows.iter().enumerate() {
        for other in &rows[position + 1..] {
            for name in row {
                for other_name in other {
                    assert_ne!(
                        name_skeleton(name),
                        name_skeleton(other_name),
                        "{name} and {other_name}"
                    );
                    assert_ne!(
                        index.values(name, Some(1990)),
                        index.values(other_name, Some(1990))
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn full_names_match_in_any_order_and_any_script_for_the_same_year()
-> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    let rows = variant_rows();
    let given_names = ["Aynur", "Gülnar", "Çingiz", "Rəşid", "İlham"];
    let given_rows: Vec<_> = rows
        .iter()
        .filter(|row| given_names.contains(&row[0]))
        .collect();
    let family_rows: Vec<_> = rows
        .iter()
        .filter(|row| !given_names.contains(&row[0]))
        .collect();
    assert_eq!(given_rows.len(), 5);
    assert_eq!(family_rows.len(), 7);

    for given in &given_rows {
        for family in &family_rows {
            let mut spellings = Vec::new();
            for given_spelling in given.iter() {
                for family_spelling in family.iter() {
                    spellings.push(format!("{given_spelling} {family_spelling}"));
                    spellings.push(format!("{family_spelling}  {given_spelling}"));
                    spellings.push(format!(
                        "{}, {}",
                        family_spelling.to_uppercase(),
                        given_spelling
                    ));
                }
            }
            let reference = full_name_value(&index, &spellings[0], Some(1990));
            assert!(reference.is_some());
            for spelling in &spellings {
                assert_eq!(
                    full_name_value(&index, spelling, Some(1990)),
                    reference,
                    "{spelling} vs {}",
                    spellings[0]
                );
                assert_ne!(full_name_value(&index, spelling, Some(1991)), reference);
                assert_ne!(full_name_value(&index, spelling, None), reference);
            }
        }
    }
    Ok(())
}

#[test]
fn a_surname_and_year_match_through_the_part_values() -> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    let stored: HashSet<_> = index
        .values("Aynur Məmmədova", Some(1990))
        .into_iter()
        .collect();
    let search = index.values("Мамедова", Some(1990));
    let part = search
        .iter()
        .find(|value| value.kind() == BlindIndexKind::NamePart)
        .ok_or(haven_crypto::CryptoError::Decryption)?;
    assert!(stored.contains(part));
    let full = full_name_value(&index, "Мамедова", Some(1990));
    assert!(full.is_some_and(|full| !stored.contains(&full)));

    let other_year: HashSet<_> = index.values("Мамедова", Some(1991)).into_iter().collect();
    assert!(stored.is_disjoint(&other_year));
    Ok(())
}

#[test]
fn without_a_birth_year_only_the_full_name_is_indexed() -> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    let values = index.values("Aynur Məmmədova", None);
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].kind(), BlindIndexKind::FullName);
    assert_eq!(values, index.values("Мамедова Айнур", None));
    Ok(())
}

#[test]
fn value_counts_follow_distinct_parts() -> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    assert_eq!(index.values("Aynur Məmmədova", Some(1990)).len(), 3);
    // Məmmədova and Mamedova are one part after skeletonising.
    assert_eq!(index.values("Məmmədova Mamedova", Some(1990)).len(), 2);
    Ok(())
}

#[test]
fn an_azerbaijani_patronymic_does_not_prevent_a_match() -> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    let plain = index.values("Aynur Məmmədova", Some(1990));
    assert_eq!(
        index.values("Məmmədova Aynur Rəşid qızı", Some(1990)),
        plain
    );
    assert_eq!(index.values("Мамедова Айнур Рашид кызы", Some(1990)), plain);
    assert_eq!(
        index.values("Cəfərov İlham Çingiz oğlu", Some(1980)),
        index.values("Jafarov Ilham", Some(1980))
    );
    Ok(())
}

#[test]
fn different_names_never_share_a_skeleton_or_a_value() -> Result<(), haven_crypto::CryptoError> {
    assert!(DIFFERENT_NAMES.len() >= 30);
    let index = index_with_new_key()?;
    let mut collisions = Vec::new();
    for (first, second) in DIFFERENT_NAMES {
        if name_skeleton(first) == name_skeleton(second) {
            collisions.push(format!("{first} / {second} -> {}", name_skeleton(first)));
        }
        let first_values: HashSet<_> = index.values(first, Some(1990)).into_iter().collect();
        let second_values: HashSet<_> = index.values(second, Some(1990)).into_iter().collect();
        assert!(
            first_values.is_disjoint(&second_values),
            "{first} / {second}"
        );
    }
    assert!(collisions.is_empty(), "collisions: {collisions:#?}");
    Ok(())
}

#[test]
fn the_documented_collisions_still_collide() {
    // Kept in step with the "Known collisions" list in the skeleton docs: if a
    // class change separates one of these, update the docs.
    for (first, second) in [
        ("Zakir", "Zahir"),
        ("Sahib", "Saqib"),
        ("Emin", "Amin"),
        ("Elmira", "Almira"),
    ] {
        assert_eq!(
            name_skeleton(first),
            name_skeleton(second),
            "{first} / {second}"
        );
    }
}

#[test]
fn names_without_letters_give_no_values() -> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    for name in ["", "   ", "\t\n", " - , . ", "'", "1990"] {
        assert!(index.values(name, Some(1990)).is_empty(), "{name:?}");
        assert!(index.values(name, None).is_empty(), "{name:?}");
    }
    Ok(())
}

#[test]
fn values_are_deterministic_and_depend_on_the_key() -> Result<(), haven_crypto::CryptoError> {
    let key_bytes = [0x17; 32];
    let first = BlindIndex::new(&BlindIndexKey::from_bytes(key_bytes));
    let same = BlindIndex::new(&BlindIndexKey::from_bytes(key_bytes));
    let other = BlindIndex::new(&BlindIndexKey::from_bytes([0x18; 32]));
    let values = first.values("Aynur Məmmədova", Some(1990));
    assert_eq!(values, same.values("Aynur Məmmədova", Some(1990)));
    let other_values: HashSet<_> = other
        .values("Aynur Məmmədova", Some(1990))
        .into_iter()
        .collect();
    assert!(values.iter().all(|value| !other_values.contains(value)));
    Ok(())
}

#[test]
fn kinds_never_collide_for_a_one_word_name() -> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    let values = index.values("Aynur", Some(1990));
    assert_eq!(values.len(), 2);
    assert_eq!(values[0].kind(), BlindIndexKind::FullName);
    assert_eq!(values[1].kind(), BlindIndexKind::NamePart);
    assert_ne!(values[0].as_bytes(), values[1].as_bytes());
    Ok(())
}

#[test]
fn index_bytes_do_not_contain_the_name() -> Result<(), haven_crypto::CryptoError> {
    let index = index_with_new_key()?;
    let name = "Aynur Məmmədova";
    for value in index.values(name, Some(1990)) {
        let bytes = value.as_bytes();
        assert_eq!(bytes.len(), 32);
        for needle in ["Aynur".as_bytes(), "Məmm".as_bytes(), b"AInUr", b"mAmAdOvA"] {
            assert!(!bytes.windows(needle.len()).any(|window| window == needle));
        }
        let hex = value.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(!hex.contains("aynur"));
        let rebuilt = BlindIndexValue::from_slice(value.kind(), bytes)?;
        assert_eq!(rebuilt, value);
        assert_eq!(BlindIndexValue::from_bytes(value.kind(), *bytes), value);
    }
    assert!(BlindIndexValue::from_slice(BlindIndexKind::FullName, &[0; 31]).is_err());
    Ok(())
}
