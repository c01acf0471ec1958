import Core
import Wire

extension TCPConnection {
    /// What the send loop decided to transmit next.
    enum TransmitPlan {
        case retransmit(from: SequenceNumber, to: SequenceNumber)
        case newData(length: Int, fin: Bool)
        /// Nothing now, and why: the congestion window, the peer's window, or no data.
        case stop(limitedBy: Limit)
    }
    enum Limit { case congestion, peerWindow, nothingToSend }

    // MARK: Small senders

    mutating func send(_ segment: TCPSegment, into actions: inout [TCPAction]) {
        counters.segmentsSent += 1
        if segment.flags.contains(.rst) { counters.resetsSent += 1 }
        actions.append(.send(segment))
    }

    /// TSval clock (RFC 7323 §5.4): one tick per millisecond, offset per connection.
    func timestampClock(_ now: Instant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) &+ tsOffset
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), always from ISS.
    mutating func sendSYN(now: Instant, into actions: inout [TCPAction]) {
        let flags: TCPFlags = state == .synSent ? .syn : [.syn, .ack]
        let seg = makeSegment(sequence: iss, flags: flags, payload: [], now: now,
                              purpose: state == .synSent ? .syn : .synAck)
        send(seg, into: &actions)
        if rtoDeadline == nil { rtoDeadline = now + rtt.timeout }
    }

    mutating func sendAcknowledgment(now: Instant, into actions: inout [TCPAction]) {
        let seg = makeSegment(sequence: sndNxt, flags: .ack, payload: [], now: now, purpose: .acknowledgment)
        send(seg, into: &actions)
    }

    /// RFC 5961 §3.2/§4.2/§5.2 challenge ACK, rate-limited per RFC 5961 §7.
    mutating func sendChallengeAck(now: Instant, into actions: inout [TCPAction]) {
        if now - challengeAckWindowStart >= .seconds(1) {
            challengeAckWindowStart = now
            challengeAcksInWindow = 0
        }
        guard challengeAcksInWindow < configuration.challengeAckLimitPerSecond else { return }
        challengeAcksInWindow += 1
        counters.challengeAcksSent += 1
        sendAcknowledgment(now: now, into: &actions)
    }

    // MARK: Building segments

    /// The window field to send, moving the advertised right edge only forward
    /// and, outside SYNs, only by enough to avoid silly windows (RFC 9293 §3.8.6.2.2).
    mutating func windowField(forSYN: Bool) -> UInt16 {
        let free = max(0, configuration.receiveBufferSize - receiveQueue.count)
        if forSYN {
            // RFC 7323 §2.2: the window in a SYN is never scaled.
            let w = min(free, 0xFFFF, max(0, optionExtension?.receiveWindowLimit ?? .max))
            if rcvAdvertisedRight < rcvNxt + w { rcvAdvertisedRight = rcvNxt + w }
            return UInt16(w)
        }
        let candidate = rcvNxt + free
        if rcvAdvertisedRight < rcvNxt {
            rcvAdvertisedRight = candidate
        } else if candidate - rcvAdvertisedRight >= min(configuration.receiveBufferSize / 2, configuration.maximumSegmentSize) {
            rcvAdvertisedRight = candidate
        }
        var window = max(0, rcvAdvertisedRight - rcvNxt)
        if let limit = optionExtension?.receiveWindowLimit { window = min(window, max(0, limit)) }
        return UInt16(min(window >> Int(rcvShift), 0xFFFF))
    }

    /// Whether reading has opened the window by enough to announce it unasked.
    var windowUpdateWanted: Bool {
        let free = max(0, configuration.receiveBufferSize - receiveQueue.count)
        let growth = (rcvNxt + free) - rcvAdvertisedRight
        return growth >= min(configuration.receiveBufferSize / 2, 2 * configuration.maximumSegmentSize)
    }

    var reservedOptionBytes: Int { optionExtension?.reservedOptionBytes ?? 0 }

    /// How many SACK blocks fit beside the other options (RFC 2018 §3: at most 4; 3 with timestamps).
    var sackBlocksToSend: Int { sackBlocks(reserving: reservedOptionBytes) }

    func sackBlocks(reserving reserved: Int) -> Int {
        guard sackEnabled && !reassembly.isEmpty else { return 0 }
        let room = maximumOptionBytes - (timestampsEnabled ? 12 : 0) - reserved - 4
        return max(0, min(reassembly.runs.count, room / 8, 4))
    }

    /// Payload bytes a data segment can carry now: the MSS less the options
    /// it will carry (RFC 9293 §3.7.1).
    var payloadLimit: Int {
        var options = (timestampsEnabled ? 12 : 0) + reservedOptionBytes
        let blocks = sackBlocksToSend
        if blocks > 0 { options += 4 + 8 * blocks }
        return max(1, min(peerMSS, configuration.maximumSegmentSize) - options)
    }

    mutating func makeSegment(sequence: SequenceNumber, flags: TCPFlags, payload: ArraySlice<UInt8>,
                              now: Instant, purpose: TCPSegmentPurpose) -> TCPSegment {
        var options: [TCPOption] = []
        let isSYN = flags.contains(.syn)
        if isSYN {
            // Linux's layout: MSS, SACK-permitted + timestamps, NOP + window scale (20 bytes).
            let offerAll = state == .synSent
            let ts = offerAll ? configuration.timestamps : timestampsEnabled
            let sack = offerAll ? configuration.selectiveAcknowledgments : sackEnabled
            let ws = offerAll ? configuration.windowScaling : (configuration.windowScaling && windowScaleNegotiated)
            options.append(.maximumSegmentSize(UInt16(clamping: configuration.maximumSegmentSize)))
            let tsOption = TCPOption.timestamps(value: timestampClock(now), echoReply: flags.contains(.ack) ? tsRecent : 0)
            if sack && ts { options += [.sackPermitted, tsOption] }
            else if ts { options += [.noOperation, .noOperation, tsOption] }
            else if sack { options += [.noOperation, .noOperation, .sackPermitted] }
            if ws { options += [.noOperation, .windowScale(configuration.receiveWindowShift)] }
        } else if timestampsEnabled && !flags.contains(.rst) {
            // RFC 7323 §3.2: every non-RST segment carries TSopt once negotiated.
            options += [.noOperation, .noOperation, .timestamps(value: timestampClock(now), echoReply: tsRecent)]
        }
        if !isSYN && flags.contains(.ack) {
            // A pure ACK may need less room for the extension's options than
            // a data segment (an MPTCP data ACK alone): the rest carries SACK,
            // without which no duplicate ACK is ever counted (RFC 6675 §2).
            let n = payload.isEmpty ? sackBlocks(reserving: optionExtension?.reservedOptionBytesWithoutPayload ?? 0)
                                    : sackBlocksToSend
            if n > 0 {
                options += [.noOperation, .noOperation, .sack(reassembly.sackBlocks(limit: n))]
                counters.sackBlocksSent += n
            }
        }
        let window = flags.contains(.rst) ? 0 : windowField(forSYN: isSYN)
        let ack = flags.contains(.ack) ? rcvNxt : SequenceNumber(0)
        if flags.contains(.ack) {
            lastAckSent = rcvNxt
            ackNow = false
            delayedAckDeadline = nil
            segmentsSinceAck = 0
        }
        var segment = TCPSegment(sourcePort: tuple.localPort, destinationPort: tuple.remotePort,
                                 sequenceNumber: sequence, acknowledgmentNumber: ack, flags: flags,
                                 window: window, options: options, payload: Array(payload))
        if var ext = optionExtension {
            let used = options.reduce(0) { $0 + wireLength(of: $1) }
            segment.options += ext.options(for: segment, purpose: purpose, room: maximumOptionBytes - used, state: state)
            optionExtension = ext
        }
        return segment
    }

    // MARK: The pipe (RFC 6675 §4, SetPipe)

    /// Bytes the sender believes are in the network: unSACKed bytes not
    /// deemed lost, plus bytes retransmitted.
    func pipe() -> Int {
        guard sndUna < sndNxt else { return 0 }
        let mss = sendMaximumSegmentSize
        if scoreboard.isEmpty {
            // One hole from SND.UNA to SND.NXT: the common case, without allocating.
            let length = sndNxt - sndUna
            let lost = min(length, max(0, lostUpTo - sndUna))
            let retransmitted = min(length, max(0, highRxt - sndUna))
            let total = length - lost + retransmitted - (sackEnabled ? 0 : renoSACKedSegments * mss)
            return max(0, total)
        }
        let threshold = configuration.duplicateAckThreshold
        var total = 0
        for hole in scoreboard.holes(from: sndUna, to: sndNxt) {
            let length = hole.right - hole.left
            let wholeLost = sackEnabled && (hole.rangesAbove >= threshold || hole.sackedAbove > (threshold - 1) * mss)
            let lost = wholeLost ? length : min(length, max(0, lostUpTo - hole.left))
            let retransmitted = min(length, max(0, highRxt - hole.left))
            total += length - lost + retransmitted
        }
        if !sackEnabled { total -= renoSACKedSegments * mss }
        return max(0, total)
    }

    /// The first lost, unSACKed range at or above `from` (RFC 6675 §4 NextSeg rule 1).
    func firstLostRange(from: SequenceNumber) -> (SequenceNumber, SequenceNumber)? {
        if scoreboard.isEmpty {
            return from < lostUpTo && from < sndNxt ? (from, min(lostUpTo, sndNxt)) : nil
        }
        let mss = sendMaximumSegmentSize
        let threshold = configuration.duplicateAckThreshold
        for hole in scoreboard.holes(from: from, to: sndNxt) {
            if sackEnabled && (hole.rangesAbove >= threshold || hole.sackedAbove > (threshold - 1) * mss) {
                return (hole.left, hole.right)
            }
            if hole.left < lostUpTo { return (hole.left, min(hole.right, lostUpTo)) }
            return nil // SACKed bytes above only shrink from here on
        }
        return nil
    }

    // MARK: The send loop

    /// Sends whatever the windows allow, then a pure ACK if one is still owed.
    mutating func output(now: Instant, into actions: inout [TCPAction]) {
        switch state {
        case .closed, .listen, .synSent, .synReceived:
            return
        case .timeWait, .finWait2:
            if ackNow || (state == .finWait2 && windowUpdateWanted) { sendAcknowledgment(now: now, into: &actions) }
            return
        case .established, .finWait1, .closeWait, .closing, .lastAck:
            break
        }
        let limit = payloadLimit
        var inFlight = pipe()
        var stoppedBy = Limit.nothingToSend
        var iterations = 0
        while iterations < 10_000 {
            iterations += 1
            let budget = congestion.congestionWindow - inFlight
            let plan = nextPlan(budget: budget, payloadLimit: limit)
            switch plan {
            case .stop(let why):
                stoppedBy = why
            case .retransmit(let from, let to):
                let sent = emitRetransmission(from: from, to: to, payloadLimit: limit, now: now, into: &actions)
                inFlight += sent
                forceRetransmission = false
                if sent > 0 { continue }
                stoppedBy = .nothingToSend // cannot happen: a lost range always holds data or the FIN
            case .newData(let length, let fin):
                inFlight += emitNewData(length: length, fin: fin, now: now, into: &actions)
                continue
            }
            break
        }
        // RFC 7661 §4.1: the window is in use when it held the data back, or
        // when what is in flight fills it to within a segment (Linux:
        // `is_cwnd_limited |= in_flight >= cwnd`). The second case matters to a
        // sender that hands the engine exactly what the window has room for,
        // as MPTCP does per subflow: it never leaves data held back, yet its
        // window is full, and a window that never counts as used never grows.
        congestionWindowLimited = stoppedBy == .congestion
            || inFlight + sendMaximumSegmentSize > congestion.congestionWindow
        overrideSenderSWS = false
        let receiving = state == .established || state == .finWait1
        if ackNow || (receiving && windowUpdateWanted) {
            sendAcknowledgment(now: now, into: &actions)
        }
        updatePersistTimer(now: now, blockedByWindow: stoppedBy == .peerWindow)
    }

    /// NextSeg (RFC 6675 §4), with new data as rule 2 and, in SACK recovery, rule 3.
    func nextPlan(budget: Int, payloadLimit limit: Int) -> TransmitPlan {
        let start = sndUna < highRxt ? highRxt : sndUna
        // Rule 1: lost data not yet retransmitted.
        if let (from, to) = firstLostRange(from: start) {
            let end = min(to, from + limit + 1)
            if forceRetransmission || budget >= min(end - from, limit) { return .retransmit(from: from, to: end) }
            return .stop(limitedBy: .congestion)
        }
        // Rule 2: new data the peer's window allows.
        if !finSent {
            let unsent = max(0, dataEnd - sndNxt)
            let windowRoom = (sndUna + sndWnd) - sndNxt
            // An extension may end the segment early (MPTCP: at a DSS mapping's end).
            let segmentLimit = min(limit, optionExtension?.payloadLimit(at: sndNxt) ?? limit)
            let length = min(segmentLimit, unsent, max(0, windowRoom))
            // The FIN may ride just past the window's edge on the last data segment.
            let fin = finQueued && sndNxt + length == dataEnd && (length > 0 || windowRoom > 0)
            if length == 0 && !fin {
                if unsent > 0 || finQueued { return .stop(limitedBy: .peerWindow) }
            } else {
                // RFC 9293 §3.8.6.2.1: sender-side silly window avoidance.
                if length < segmentLimit && length < unsent && length < maxSndWnd / 2 && !overrideSenderSWS {
                    return .stop(limitedBy: .peerWindow)
                }
                // RFC 9293 §3.7.4: Nagle — no small segment while data is unacknowledged (a FIN may go).
                if configuration.nagle && length < segmentLimit && !fin && sndUna != sndNxt {
                    return .stop(limitedBy: .nothingToSend)
                }
                if length > budget { return .stop(limitedBy: .congestion) }
                return .newData(length: length, fin: fin)
            }
        }
        // Rule 3: in SACK recovery, unSACKed data below the highest SACK.
        if inRecovery && sackEnabled, let high = scoreboard.highestSACKed,
           let hole = scoreboard.holes(from: start, to: high).first {
            let end = min(hole.right, hole.left + limit)
            if budget >= end - hole.left { return .retransmit(from: hole.left, to: end) }
            return .stop(limitedBy: .congestion)
        }
        return .stop(limitedBy: .nothingToSend)
    }

    /// Sends `[from, to)` again (payload capped by `payloadLimit`, FIN included
    /// if the range covers it). Returns the sequence space sent.
    mutating func emitRetransmission(from: SequenceNumber, to: SequenceNumber, payloadLimit limit: Int,
                                     now: Instant, into actions: inout [TCPAction]) -> Int {
        var payloadEnd = min(to, dataEnd, from + min(limit, optionExtension?.payloadLimit(at: from) ?? limit))
        if let cap = optionExtension?.retransmissionPayloadLimit(startingAt: from), cap > 0 {
            payloadEnd = min(payloadEnd, from + cap)
        }
        let payloadLength = max(0, payloadEnd - from)
        let fin = finSent && !(to <= dataEnd) && payloadEnd == dataEnd
        var flags: TCPFlags = .ack
        if fin { flags.insert(.fin) }
        if payloadLength > 0 && payloadEnd == dataEnd { flags.insert(.psh) }
        let offset = from - sendBufferStart
        let payload = payloadLength > 0 ? sendBuffer.slice(from: offset, length: payloadLength) : []
        let seg = makeSegment(sequence: from, flags: flags, payload: payload, now: now, purpose: .retransmission)
        send(seg, into: &actions)
        let length = payloadLength + (fin ? 1 : 0)
        counters.retransmissions += 1
        counters.bytesRetransmitted += payloadLength
        if highRxt < from + length { highRxt = from + length }
        timedSegment = nil // Karn: no RTT sample while anything is retransmitted
        if rtoDeadline == nil { rtoDeadline = now + rtt.timeout }
        return length
    }

    mutating func emitNewData(length: Int, fin: Bool, now: Instant, into actions: inout [TCPAction]) -> Int {
        var flags: TCPFlags = .ack
        if fin { flags.insert(.fin) }
        let start = sndNxt
        if length > 0 && start + length == dataEnd { flags.insert(.psh) }
        let payload = length > 0 ? sendBuffer.slice(from: start - sendBufferStart, length: length) : []
        let seg = makeSegment(sequence: start, flags: flags, payload: payload, now: now, purpose: .data)
        send(seg, into: &actions)
        let used = length + (fin ? 1 : 0)
        sndNxt = start + used
        if fin { finSent = true }
        counters.bytesSent += length
        if timedSegment == nil { timedSegment = (sndNxt, now) }
        if rtoDeadline == nil { rtoDeadline = now + rtt.timeout }
        return used
    }

    // MARK: Persist timer (RFC 9293 §3.8.6.1)

    mutating func updatePersistTimer(now: Instant, blockedByWindow: Bool) {
        if blockedByWindow && sndUna == sndNxt {
            if persistDeadline == nil {
                var interval = max(rtt.timeout, .milliseconds(200))
                for _ in 0..<persistBackoff where interval < .seconds(60) { interval = interval * Int64(2) }
                persistDeadline = now + min(interval, .seconds(60))
            }
        } else {
            persistDeadline = nil
            if sndWnd > 0 { persistBackoff = 0 } // the window opened: the next zero window starts afresh
        }
    }

    // MARK: Timers

    mutating func runTimers(now: Instant, into actions: inout [TCPAction]) {
        if let d = timeWaitDeadline, d <= now {
            enterClosed(.normal, into: &actions)
            return
        }
        if let d = rtoDeadline, d <= now {
            rtoDeadline = nil
            retransmissionTimerExpired(now: now, into: &actions)
            if state == .closed { return }
        }
        if let d = persistDeadline, d <= now {
            persistDeadline = nil
            persistBackoff += 1
            if sndWnd == 0 {
                // A zero-window probe: an old sequence number the peer must answer
                // with its current window (RFC 9293 §3.8.6.1).
                let probe = makeSegment(sequence: sndUna - 1, flags: .ack, payload: [], now: now, purpose: .windowProbe)
                counters.zeroWindowProbesSent += 1
                send(probe, into: &actions)
            } else {
                // The window is open but too small to be worth it: send what fits anyway.
                overrideSenderSWS = true
            }
        }
        if let d = delayedAckDeadline, d <= now {
            delayedAckDeadline = nil
            ackNow = true
        }
        if let d = keepaliveDeadline, d <= now {
            keepaliveDeadline = nil
            keepaliveTimerExpired(now: now, into: &actions)
        }
    }

    /// RFC 6298 §5.4–§5.7 and RFC 5681 §3.1.
    mutating func retransmissionTimerExpired(now: Instant, into actions: inout [TCPAction]) {
        switch state {
        case .synSent, .synReceived:
            guard handshakeRetransmissions < configuration.maximumSYNRetransmissions else {
                enterClosed(.timedOut, into: &actions)
                return
            }
            handshakeRetransmissions += 1
            counters.retransmissions += 1
            counters.retransmissionTimeouts += 1
            rtt.backOff()
            timedSegment = nil
            sendSYN(now: now, into: &actions)
        case .established, .finWait1, .closeWait, .closing, .lastAck:
            guard sndUna < sndNxt else { return }
            guard consecutiveTimeouts < configuration.maximumRetransmissions else {
                enterClosed(.timedOut, into: &actions)
                return
            }
            consecutiveTimeouts += 1
            counters.retransmissionTimeouts += 1
            if consecutiveTimeouts == 1 {
                // RFC 5681 §3.1: ssthresh is set once for a series of timeouts of the same data.
                congestion.onRetransmissionTimeout(now: now, bytesInFlight: sndNxt - sndUna,
                                                   maximumSegmentSize: sendMaximumSegmentSize)
            }
            // RFC 2018 §8: after a timeout, SACK information is not trusted.
            scoreboard.clear()
            lostUpTo = sndNxt
            highRxt = sndUna
            inRecovery = false
            renoSACKedSegments = 0
            duplicateAcks = 0
            recoverFloor = sndNxt // RFC 6582 §3.2 step 4
            timedSegment = nil
            rtt.backOff()
            forceRetransmission = true
        default:
            break
        }
    }

    /// RFC 9293 §3.8.4: a probe with SEG.SEQ = SND.NXT − 1 and no data.
    mutating func keepaliveTimerExpired(now: Instant, into actions: inout [TCPAction]) {
        guard let settings = configuration.keepalive, state == .established || state == .closeWait else { return }
        if sndUna != sndNxt {
            keepaliveDeadline = now + settings.idle // the retransmission timer watches the peer
            return
        }
        guard keepaliveProbes < settings.probes else {
            enterClosed(.timedOut, into: &actions)
            return
        }
        keepaliveProbes += 1
        counters.keepalivesSent += 1
        let probe = makeSegment(sequence: sndNxt - 1, flags: .ack, payload: [], now: now, purpose: .keepalive)
        send(probe, into: &actions)
        keepaliveDeadline = now + settings.interval
    }
}
