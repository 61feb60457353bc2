//! Units a binding may put on a signal, and their conversion to the twin's units.
//!
//! The twin computes every quantity in one unit per dimension (SI, kelvin, seconds,
//! degrees for geodetic angles, a fraction for a state of charge); a DBC signal may
//! carry it in another of the same dimension. The conversion is linear:
//! `wire = twin * factor + offset`.

/// What a bound signal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Pressure; twin unit Pa.
    Pressure,
    /// Temperature; twin unit K.
    Temperature,
    /// Electric potential; twin unit V.
    Voltage,
    /// Electric current; twin unit A.
    Current,
    /// A fraction of a whole; twin unit 1 (0 to 1).
    Fraction,
    /// Time; twin unit s.
    Time,
    /// Length; twin unit m.
    Length,
    /// Speed; twin unit m/s.
    Speed,
    /// Angle; twin unit deg.
    Angle,
    /// Angular rate; twin unit rad/s.
    AngularRate,
    /// Acceleration (specific force); twin unit m/s^2.
    Acceleration,
    /// A pure number: a count, a bit mask, a flag, an enumeration or a quaternion
    /// component. Carried as is (factor 1, no offset).
    Number,
}

impl Dimension {
    /// The twin's unit of this dimension.
    pub fn twin_unit(self) -> &'static str {
        match self {
            Dimension::Pressure => "Pa",
            Dimension::Temperature => "K",
            Dimension::Voltage => "V",
            Dimension::Current => "A",
            Dimension::Fraction => "1",
            Dimension::Time => "s",
            Dimension::Length => "m",
            Dimension::Speed => "m/s",
            Dimension::Angle => "deg",
            Dimension::AngularRate => "rad/s",
            Dimension::Acceleration => "m/s^2",
            Dimension::Number => "",
        }
    }

    /// The units a binding may give, by name.
    pub fn units(self) -> &'static [(&'static str, f64, f64)] {
        match self {
            Dimension::Pressure => &[
                ("Pa", 1.0, 0.0),
                ("hPa", 0.01, 0.0),
                ("mbar", 0.01, 0.0),
                ("kPa", 1e-3, 0.0),
                ("bar", 1e-5, 0.0),
                ("MPa", 1e-6, 0.0),
                ("psi", 1.0 / 6_894.757_293_168, 0.0),
            ],
            Dimension::Temperature => &[("K", 1.0, 0.0), ("degC", 1.0, -273.15)],
            Dimension::Voltage => &[("V", 1.0, 0.0), ("mV", 1e3, 0.0)],
            Dimension::Current => &[("A", 1.0, 0.0), ("mA", 1e3, 0.0)],
            Dimension::Fraction => &[("1", 1.0, 0.0), ("%", 100.0, 0.0)],
            Dimension::Time => &[
                ("s", 1.0, 0.0),
                ("ms", 1e3, 0.0),
                ("us", 1e6, 0.0),
                ("min", 1.0 / 60.0, 0.0),
            ],
            Dimension::Length => &[
                ("m", 1.0, 0.0),
                ("km", 1e-3, 0.0),
                ("ft", 1.0 / 0.3048, 0.0),
            ],
            Dimension::Speed => &[
                ("m/s", 1.0, 0.0),
                ("km/h", 3.6, 0.0),
                ("ft/s", 1.0 / 0.3048, 0.0),
                ("kn", 3600.0 / 1852.0, 0.0),
            ],
            Dimension::Angle => &[
                ("deg", 1.0, 0.0),
                ("rad", std::f64::consts::PI / 180.0, 0.0),
            ],
            Dimension::AngularRate => &[
                ("rad/s", 1.0, 0.0),
                ("mrad/s", 1e3, 0.0),
                ("deg/s", 180.0 / std::f64::consts::PI, 0.0),
            ],
            // Standard gravity 9.806 65 m/s^2 (CGPM 1901, NIST SP 811).
            Dimension::Acceleration => &[
                ("m/s^2", 1.0, 0.0),
                ("g", 1.0 / 9.806_65, 0.0),
                ("mg", 1e3 / 9.806_65, 0.0),
                ("ft/s^2", 1.0 / 0.3048, 0.0),
            ],
            Dimension::Number => &[("", 1.0, 0.0)],
        }
    }

    /// `(factor, offset)` of `unit` (`wire = twin * factor + offset`), if it is one of
    /// this dimension's.
    pub fn conversion(self, unit: &str) -> Option<(f64, f64)> {
        self.units()
            .iter()
            .find(|(u, _, _)| *u == unit)
            .map(|&(_, f, o)| (f, o))
    }

    /// The unit names, for error messages.
    pub fn unit_list(self) -> String {
        self.units()
            .iter()
            .map(|(u, _, _)| format!("`{u}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_their_definitions() {
        // 1 standard atmosphere, 0 degC, 1 ft, 1 kn (NIST SP 811 values).
        let (f, o) = Dimension::Pressure.conversion("hPa").expect("hPa");
        assert!((101_325.0 * f + o - 1013.25).abs() < 1e-9);
        let (f, o) = Dimension::Pressure.conversion("psi").expect("psi");
        assert!((101_325.0 * f + o - 14.695_948_8).abs() < 1e-6);
        let (f, o) = Dimension::Temperature.conversion("degC").expect("degC");
        assert!((273.15 * f + o).abs() < 1e-12);
        let (f, _) = Dimension::Length.conversion("ft").expect("ft");
        assert!((0.3048 * f - 1.0).abs() < 1e-12);
        let (f, _) = Dimension::Speed.conversion("kn").expect("kn");
        assert!((1852.0 / 3600.0 * f - 1.0).abs() < 1e-12);
        let (f, _) = Dimension::Acceleration.conversion("g").expect("g");
        assert!((9.806_65 * f - 1.0).abs() < 1e-12);
        let (f, _) = Dimension::AngularRate.conversion("deg/s").expect("deg/s");
        assert!((std::f64::consts::PI * f - 180.0).abs() < 1e-9);
        assert_eq!(Dimension::Voltage.conversion("Pa"), None);
    }
}
