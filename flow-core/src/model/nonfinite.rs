//! Serde for floats that may be non-finite (feature `alloc`): JSON has no NaN or ±∞, so they are
//! written as the strings `"NaN"`, `"inf"` and `"-inf"` and read back exactly (finite values stay
//! numbers). For `#[serde(with = "flow_core::model::nonfinite::one")]` (`vec`, `vec2`) on the
//! metadata's fields: the golden vectors, training records.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Num(f64),
    Text(String),
}

fn to_repr(v: f64) -> Repr {
    if v.is_finite() {
        Repr::Num(v)
    } else if v.is_nan() {
        Repr::Text(String::from("NaN"))
    } else if v > 0.0 {
        Repr::Text(String::from("inf"))
    } else {
        Repr::Text(String::from("-inf"))
    }
}

fn from_repr<E: serde::de::Error>(r: Repr) -> Result<f64, E> {
    match r {
        Repr::Num(v) => Ok(v),
        Repr::Text(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(E::custom(format!("not a number: {other:?}"))),
        },
    }
}

/// One float.
pub mod one {
    use super::*;
    /// Serializes.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        to_repr(*v).serialize(s)
    }
    /// Deserializes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        from_repr(Repr::deserialize(d)?)
    }
}

/// A vector of floats.
pub mod vec {
    use super::*;
    /// Serializes.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        v.iter().map(|&x| to_repr(x)).collect::<Vec<_>>().serialize(s)
    }
    /// Deserializes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Repr>::deserialize(d)?.into_iter().map(from_repr).collect()
    }
}

/// A vector of vectors of floats.
pub mod vec2 {
    use super::*;
    /// Serializes.
    pub fn serialize<S: Serializer>(v: &[Vec<f64>], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|r| r.iter().map(|&x| to_repr(x)).collect::<Vec<_>>())
            .collect::<Vec<_>>()
            .serialize(s)
    }
    /// Deserializes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        Vec::<Vec<Repr>>::deserialize(d)?
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(from_repr::<D::Error>)
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super::one")]
        a: f64,
        #[serde(with = "super::vec")]
        b: Vec<f64>,
        #[serde(with = "super::vec2")]
        c: Vec<Vec<f64>>,
    }

    #[test]
    fn non_finite_values_round_trip() {
        let t = T {
            a: f64::INFINITY,
            b: vec![1.5, f64::NEG_INFINITY, 0.1],
            c: vec![vec![f64::NAN, -0.0]],
        };
        let s = serde_json::to_string(&t).unwrap();
        let u: T = serde_json::from_str(&s).unwrap();
        assert_eq!(u.a, f64::INFINITY);
        assert_eq!(u.b[0], 1.5);
        assert_eq!(u.b[1], f64::NEG_INFINITY);
        assert!(u.c[0][0].is_nan());
        assert_eq!(u.c[0][1].to_bits(), (-0.0f64).to_bits());
    }
}
