//! Places: the gazetteer of settlements and great-circle distances, shared by
//! referral (searches, coverage) and intake (where a screening took place).

use std::path::Path;

/// Mean Earth radius in km (IUGG).
const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// The settlements shipped with Haven (Azerbaijan), used unless a deployment
/// configures its own gazetteer.
const DEFAULT_GAZETTEER: &str = include_str!("../data/az-settlements.csv");

/// A point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Latitude, -90 to 90.
    pub latitude: f64,
    /// Longitude, -180 to 180.
    pub longitude: f64,
}

impl Point {
    /// A point if both coordinates are in range.
    pub fn new(latitude: f64, longitude: f64) -> Option<Point> {
        ((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude)).then_some(
            Point {
                latitude,
                longitude,
            },
        )
    }

    /// Great-circle distance in km (haversine).
    pub fn distance_km(self, other: Point) -> f64 {
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let d_lat = lat2 - lat1;
        let d_lon = (other.longitude - self.longitude).to_radians();
        let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }

    /// A latitude/longitude box that holds every point within `radius_km` (a cheap
    /// first filter before the exact distance). Near the poles or across the
    /// antimeridian it widens to every longitude.
    pub fn bounding_box(self, radius_km: f64) -> BoundingBox {
        let d_lat = (radius_km / EARTH_RADIUS_KM).to_degrees();
        let cos_lat = self.latitude.to_radians().cos();
        let d_lon = if cos_lat < 1e-6 {
            180.0
        } else {
            (radius_km / (EARTH_RADIUS_KM * cos_lat))
                .to_degrees()
                .min(180.0)
        };
        let (min_longitude, max_longitude) =
            if self.longitude - d_lon < -180.0 || self.longitude + d_lon > 180.0 {
                (-180.0, 180.0)
            } else {
                (self.longitude - d_lon, self.longitude + d_lon)
            };
        BoundingBox {
            min_latitude: (self.latitude - d_lat).max(-90.0),
            max_latitude: (self.latitude + d_lat).min(90.0),
            min_longitude,
            max_longitude,
        }
    }
}

/// A latitude/longitude range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Southern edge.
    pub min_latitude: f64,
    /// Northern edge.
    pub max_latitude: f64,
    /// Western edge.
    pub min_longitude: f64,
    /// Eastern edge.
    pub max_longitude: f64,
}

/// A settlement of the gazetteer.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// Local name, e.g. `Gəncə`.
    pub name: String,
    /// English name, e.g. `Ganja`.
    pub name_en: String,
    /// Where it is.
    pub point: Point,
}

/// The settlements searches and coverage refer to.
#[derive(Debug, Clone)]
pub struct Gazetteer {
    settlements: Vec<Settlement>,
}

impl Gazetteer {
    /// The shipped gazetteer.
    pub fn default_settlements() -> Gazetteer {
        // The shipped file is tested to parse.
        Gazetteer::parse(DEFAULT_GAZETTEER).unwrap_or(Gazetteer {
            settlements: Vec::new(),
        })
    }

    /// Loads a deployment's CSV gazetteer.
    pub fn load(path: &Path) -> anyhow::Result<Gazetteer> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| anyhow::anyhow!("gazetteer {}: {error}", path.display()))?;
        Gazetteer::parse(&text)
            .map_err(|error| anyhow::anyhow!("gazetteer {}: {error}", path.display()))
    }

    /// Parses `name_az,name_en,lat,lon` lines after a header line.
    pub fn parse(text: &str) -> Result<Gazetteer, String> {
        let mut settlements = Vec::new();
        for (number, line) in text.lines().enumerate().skip(1) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [name, name_en, latitude, longitude] = fields[..] else {
                return Err(format!(
                    "line {}: expected name_az,name_en,lat,lon",
                    number + 1
                ));
            };
            let point = latitude
                .parse()
                .ok()
                .zip(longitude.parse().ok())
                .and_then(|(latitude, longitude)| Point::new(latitude, longitude))
                .ok_or_else(|| format!("line {}: coordinates out of range", number + 1))?;
            if name.is_empty() {
                return Err(format!("line {}: no name", number + 1));
            }
            settlements.push(Settlement {
                name: name.to_owned(),
                name_en: name_en.to_owned(),
                point,
            });
        }
        if settlements.is_empty() {
            return Err("no settlements".to_owned());
        }
        Ok(Gazetteer { settlements })
    }

    /// Every settlement, in file order.
    pub fn settlements(&self) -> &[Settlement] {
        &self.settlements
    }

    /// A settlement by its local or English name, ignoring case and diacritics
    /// (`Gəncə`, `gence`, `GANJA` all find Gəncə).
    pub fn find(&self, name: &str) -> Option<&Settlement> {
        let wanted = fold(name);
        if wanted.is_empty() {
            return None;
        }
        self.settlements.iter().find(|settlement| {
            fold(&settlement.name) == wanted || fold(&settlement.name_en) == wanted
        })
    }
}

/// A settlement name as compared: lower case, Azerbaijani and Turkish letters with
/// diacritics reduced to their base letter, combining marks dropped, runs of spaces
/// and hyphens made one space.
fn fold(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    let mut gap = false;
    for character in name.trim().chars().flat_map(char::to_lowercase) {
        let base = match character {
            'ə' | 'ä' => 'e',
            'ı' | 'î' | 'ï' => 'i',
            'ö' => 'o',
            'ü' | 'û' => 'u',
            'ç' => 'c',
            'ş' => 's',
            'ğ' => 'g',
            'â' | 'á' | 'à' => 'a',
            'é' | 'è' | 'ê' => 'e',
            // Combining marks (İ lowercases to i with a combining dot above).
            '\u{0300}'..='\u{036f}' => continue,
            ' ' | '-' | '\t' => {
                gap = true;
                continue;
            }
            other => other,
        };
        if gap && !folded.is_empty() {
            folded.push(' ');
        }
        gap = false;
        folded.push(base);
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_spelling_case_and_diacritics() {
        let gazetteer = Gazetteer::default_settlements();
        for spelling in ["Gəncə", "gəncə", "GANJA", "Gence", " ganja "] {
            assert_eq!(
                gazetteer.find(spelling).unwrap().name,
                "Gəncə",
                "{spelling}"
            );
        }
        assert_eq!(gazetteer.find("imishli").unwrap().name, "İmişli");
        assert_eq!(gazetteer.find("Imisli").unwrap().name, "İmişli");
        assert!(gazetteer.find("Atlantis").is_none());
        assert!(gazetteer.find("  ").is_none());
    }

    #[test]
    fn distances_match_known_ones() {
        let gazetteer = Gazetteer::default_settlements();
        assert!(gazetteer.settlements().len() >= 40);
        let baku = gazetteer.find("Bakı").unwrap().point;
        let ganja = gazetteer.find("ganja").unwrap().point;
        // Baku to Ganja is about 300 km as the crow flies.
        let distance = baku.distance_km(ganja);
        assert!((295.0..310.0).contains(&distance), "{distance}");
        assert!(baku.distance_km(baku).abs() < 1e-9);
    }

    #[test]
    fn the_bounding_box_holds_every_point_of_the_circle() {
        let center = Point::new(40.4, 49.9).unwrap();
        let frame = center.bounding_box(150.0);
        for step in 0..360 {
            let bearing = f64::from(step).to_radians();
            // A point 149.9 km away in every direction.
            let angular = 149.9 / EARTH_RADIUS_KM;
            let lat1 = center.latitude.to_radians();
            let lat2 =
                (lat1.sin() * angular.cos() + lat1.cos() * angular.sin() * bearing.cos()).asin();
            let lon2 = center.longitude.to_radians()
                + (bearing.sin() * angular.sin() * lat1.cos())
                    .atan2(angular.cos() - lat1.sin() * lat2.sin());
            let (lat, lon) = (lat2.to_degrees(), lon2.to_degrees());
            assert!(
                frame.min_latitude <= lat && lat <= frame.max_latitude,
                "{step}"
            );
            assert!(
                frame.min_longitude <= lon && lon <= frame.max_longitude,
                "{step}"
            );
        }
    }

    #[test]
    fn a_bad_gazetteer_is_refused_with_its_line() {
        assert!(
            Gazetteer::parse("name_az,name_en,lat,lon\nX,Y,91,0")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(Gazetteer::parse("name_az,name_en,lat,lon\nX,Y").is_err());
        assert!(Gazetteer::parse("header only").is_err());
    }
}
