#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A position on the ground in local metres: `x` east, `y` north, from an
/// origin the topology or the projection chooses.
public struct Point: Hashable, Sendable, CustomStringConvertible {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) { self.x = x; self.y = y }
    public static let origin = Point(x: 0, y: 0)

    public func distance(to other: Point) -> Double {
        ((x - other.x) * (x - other.x) + (y - other.y) * (y - other.y)).squareRoot()
    }

    /// The point a fraction `f` of the way from `self` to `other`.
    public func interpolated(to other: Point, fraction f: Double) -> Point {
        Point(x: x + (other.x - x) * f, y: y + (other.y - y) * f)
    }

    public var description: String { "(\(formatMetres(x)), \(formatMetres(y)))" }
}

/// A WGS 84 latitude/longitude in degrees.
public struct GeoCoordinate: Hashable, Sendable {
    public var latitude: Double
    public var longitude: Double
    public init(latitude: Double, longitude: Double) { self.latitude = latitude; self.longitude = longitude }
}

/// Projects latitude/longitude to local metres around an origin with the
/// WGS 84 ellipsoid's radii of curvature at the origin (a local tangent plane).
/// Over the few kilometres of a drive its error is far below GPS error: at
/// 10 km from the origin it stays under a metre.
public struct LocalProjection: Hashable, Sendable {
    public var origin: GeoCoordinate
    /// Metres per radian northward (meridional radius of curvature M).
    let northRadius: Double
    /// Metres per radian eastward at the origin's latitude (N cos φ).
    let eastRadius: Double

    /// WGS 84 semi-major axis and first eccentricity squared.
    static let semiMajorAxis = 6_378_137.0
    static let eccentricitySquared = 6.694_379_990_14e-3

    public init(origin: GeoCoordinate) {
        self.origin = origin
        let phi = origin.latitude * .pi / 180
        let s = sin(phi)
        let w = (1 - LocalProjection.eccentricitySquared * s * s).squareRoot()
        let a = LocalProjection.semiMajorAxis
        northRadius = a * (1 - LocalProjection.eccentricitySquared) / (w * w * w)
        eastRadius = a / w * cos(phi)
    }

    public func project(_ c: GeoCoordinate) -> Point {
        var dLon = c.longitude - origin.longitude
        // Across the antimeridian, take the short way round.
        if dLon > 180 { dLon -= 360 } else if dLon < -180 { dLon += 360 }
        return Point(x: dLon * .pi / 180 * eastRadius,
                     y: (c.latitude - origin.latitude) * .pi / 180 * northRadius)
    }
}

/// Metres with at most two decimals, for tables and messages.
func formatMetres(_ v: Double) -> String { formatDecimal(v, digits: 2) }

/// A decimal rendering with at most `digits` fractional digits and no trailing zeros.
public func formatDecimal(_ v: Double, digits: Int) -> String {
    guard v.isFinite else { return v.isNaN ? "nan" : (v < 0 ? "-inf" : "inf") }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (v * scale).rounded()
    if scaled == 0 { return "0" }
    let negative = scaled < 0
    guard scaled.magnitude < 9e18 else { return String(v) }
    let m = UInt64(scaled.magnitude)
    let unit = UInt64(scale)
    var text = String(m / unit)
    if digits > 0 {
        var frac = String(m % unit)
        while frac.count < digits { frac = "0" + frac }
        while frac.hasSuffix("0") { frac.removeLast() }
        if !frac.isEmpty { text += "." + frac }
    }
    return (negative ? "-" : "") + text
}
