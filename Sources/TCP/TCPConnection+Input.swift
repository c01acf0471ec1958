import Core
import Wire

/// The options of an arriving segment that the engine acts on.
struct ReceivedOptions {
    var mss: Int?
    var windowScale: UInt8?
    var sackPermitted = false
    var timestamp: (value: UInt32, echoReply: UInt32)?
    var sackBlocks: [SACKBlock] = []

    init(_ options: [TCPOption]) {
        for option in options {
            switch option {
            case .maximumSegmentSize(let m): mss = Int(m)
            case .windowScale(let s): windowScale = s
            case .sackPermitted: sackPermitted = true
            case .timestamps(let v, let e): timestamp = (v, e)
            case .sack(let blocks): sackBlocks = blocks
            default: break // other kinds (MPTCP, unknown) are the extension's business
            }
        }
    }
}

extension TCPConnection {
    /// SEGMENT ARRIVES (RFC 9293 §3.10.7).
    public mutating func handle(_ segment: TCPSegment, now: Instant) -> [TCPAction] {
        var actions: [TCPAction] = []
        counters.segmentsReceived += 1
        if segment.flags.contains(.rst) { counters.resetsReceived += 1 }
        if state != .closed && state != .listen { optionExtension?.received(segment, state: state) }
        switch state {
        case .closed:
            if let rst = Self.resetReply(to: segment) { send(rst, into: &actions) }
            return actions
        case .listen:
            handleInListen(segment, now: now, into: &actions)
        case .synSent:
            handleInSynSent(segment, now: now, into: &actions)
        default:
            handleSynchronized(segment, now: now, into: &actions)
        }
        output(now: now, into: &actions)
        return actions
    }

    /// RFC 9293 §3.10.7.1: what a CLOSED port answers (nil for a RST, which is dropped).
    public static func resetReply(to segment: TCPSegment) -> TCPSegment? {
        guard !segment.flags.contains(.rst) else { return nil }
        if segment.flags.contains(.ack) {
            return TCPSegment(sourcePort: segment.destinationPort, destinationPort: segment.sourcePort,
                              sequenceNumber: segment.acknowledgmentNumber, flags: .rst, window: 0)
        }
        return TCPSegment(sourcePort: segment.destinationPort, destinationPort: segment.sourcePort,
                          sequenceNumber: SequenceNumber(0),
                          acknowledgmentNumber: segment.sequenceNumber + segment.sequenceLength,
                          flags: [.rst, .ack], window: 0)
    }

    // MARK: LISTEN (RFC 9293 §3.10.7.2)

    mutating func handleInListen(_ seg: TCPSegment, now: Instant, into actions: inout [TCPAction]) {
        if seg.flags.contains(.rst) { return }
        if seg.flags.contains(.ack) {
            send(TCPSegment(sourcePort: tuple.localPort, destinationPort: seg.sourcePort,
                            sequenceNumber: seg.acknowledgmentNumber, flags: .rst, window: 0), into: &actions)
            return
        }
        guard seg.flags.contains(.syn) else { return }
        tuple.remotePort = seg.sourcePort
        irs = seg.sequenceNumber
        rcvNxt = irs + 1
        negotiate(with: ReceivedOptions(seg.options), now: now)
        iss = isnGenerator.initialSequenceNumber(for: tuple, at: now)
        tsOffset = isnGenerator.timestampOffset(for: tuple)
        sndUna = iss; sndNxt = iss + 1
        sendBufferStart = iss + 1
        highRxt = sndUna; lostUpTo = sndUna; recoverFloor = iss
        // The SYN's window is never scaled (RFC 7323 §2.2).
        sndWnd = Int(seg.window); maxSndWnd = sndWnd
        sndWl1 = seg.sequenceNumber; sndWl2 = iss
        state = .synReceived
        sendSYN(now: now, into: &actions)
        timedSegment = (sndNxt, now)
    }

    /// Applies the options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2 and §3.2, RFC 2018 §2).
    mutating func negotiate(with options: ReceivedOptions, now: Instant) {
        peerMSS = max(options.mss ?? 536, 64)
        rcvAdvertisedRight = rcvNxt
        if configuration.windowScaling, let shift = options.windowScale {
            // RFC 7323 §2.3: a shift above 14 is used as 14.
            sndShift = min(shift, 14)
            rcvShift = configuration.receiveWindowShift
            windowScaleNegotiated = true
        } else {
            // RFC 7323 §2.2: scaling applies only when both SYNs carried the option.
            sndShift = 0; rcvShift = 0
            windowScaleNegotiated = false
        }
        if configuration.timestamps, let ts = options.timestamp {
            timestampsEnabled = true
            tsRecent = ts.value; tsRecentTime = now
        } else {
            timestampsEnabled = false
        }
        sackEnabled = configuration.selectiveAcknowledgments && options.sackPermitted
    }

    // MARK: SYN-SENT (RFC 9293 §3.10.7.3)

    mutating func handleInSynSent(_ seg: TCPSegment, now: Instant, into actions: inout [TCPAction]) {
        let hasAck = seg.flags.contains(.ack)
        if hasAck && (seg.acknowledgmentNumber <= iss || sndNxt < seg.acknowledgmentNumber) {
            if !seg.flags.contains(.rst) {
                send(TCPSegment(sourcePort: tuple.localPort, destinationPort: tuple.remotePort,
                                sequenceNumber: seg.acknowledgmentNumber, flags: .rst, window: 0), into: &actions)
            }
            return
        }
        if seg.flags.contains(.rst) {
            // Only a RST whose ACK acknowledges our SYN is believed.
            if hasAck { enterClosed(.refused, into: &actions) }
            return
        }
        guard seg.flags.contains(.syn) else { return }
        irs = seg.sequenceNumber
        rcvNxt = irs + 1
        let options = ReceivedOptions(seg.options)
        negotiate(with: options, now: now)
        if hasAck {
            sndUna = seg.acknowledgmentNumber
            highRxt = sndUna; lostUpTo = sndUna
        }
        if iss < sndUna {
            state = .established
            sndWnd = Int(seg.window); maxSndWnd = sndWnd
            sndWl1 = seg.sequenceNumber; sndWl2 = seg.acknowledgmentNumber
            rtoDeadline = nil
            handshakeCompleted(now: now, echo: options.timestamp?.echoReply)
            ackNow = true
            if !seg.payload.isEmpty { acceptText(seg, now: now) }
            if finQueued { state = .finWait1 }
        } else {
            // Simultaneous open (RFC 9293 Figure 7).
            state = .synReceived
            sndWnd = Int(seg.window); maxSndWnd = sndWnd
            sndWl1 = seg.sequenceNumber
            sendSYN(now: now, into: &actions)
        }
    }

    /// The SYN was acknowledged: take an RTT sample unless the SYN was sent
    /// more than once (Karn), and apply RFC 6298 §5.7.
    mutating func handshakeCompleted(now: Instant, echo: UInt32?) {
        if handshakeRetransmissions == 0, let timed = timedSegment {
            rtt.addSample(now - timed.sentAt)
        } else if handshakeRetransmissions > 0 {
            rtt.handshakeRetransmitted()
        }
        timedSegment = nil
        consecutiveTimeouts = 0
        keepaliveProbes = 0
        if let k = configuration.keepalive { keepaliveDeadline = now + k.idle }
        // The congestion controller started with our own MSS; now the real one is known.
        if !congestionControlInstalled {
            congestion = configuration.congestionControl.make(
                maximumSegmentSize: sendMaximumSegmentSize,
                initialWindowSegments: configuration.initialWindowSegments)
        }
    }

    // MARK: Synchronized states and SYN-RECEIVED (RFC 9293 §3.10.7.4)

    mutating func handleSynchronized(_ seg: TCPSegment, now: Instant, into actions: inout [TCPAction]) {
        let flags = seg.flags
        let options = ReceivedOptions(seg.options)
        if let k = configuration.keepalive, state.isSynchronized {
            keepaliveProbes = 0
            keepaliveDeadline = now + k.idle
        }

        // RFC 7323 §3.2: once negotiated, a non-RST segment without TSopt is dropped.
        if timestampsEnabled && options.timestamp == nil && !flags.contains(.rst) && state != .synReceived { return }

        // RFC 7323 §5.3 R1 (PAWS): an older TSval means an old duplicate; ACK it and drop it.
        if timestampsEnabled, let ts = options.timestamp, !flags.contains(.rst),
           Int32(bitPattern: ts.value &- tsRecent) < 0,
           // RFC 7323 §5.5: TS.Recent older than 24 days is no longer trusted.
           now - tsRecentTime < .seconds(24 * 86_400) {
            counters.pawsRejected += 1
            ackNow = true
            sendAcknowledgment(now: now, into: &actions)
            return
        }

        // Step 1: is the sequence number acceptable?
        let rcvWnd = max(0, rcvAdvertisedRight - rcvNxt)
        let length = seg.sequenceLength
        let seq = seg.sequenceNumber
        let acceptable: Bool
        if length == 0 {
            acceptable = rcvWnd == 0 ? seq == rcvNxt : seq.isWithin(rcvNxt, length: rcvWnd)
        } else {
            acceptable = rcvWnd > 0 && (seq.isWithin(rcvNxt, length: rcvWnd)
                                         || (seq + (length - 1)).isWithin(rcvNxt, length: rcvWnd))
        }
        if !acceptable {
            if state == .synReceived && flags.contains(.syn) && !flags.contains(.ack) && seq == irs {
                // The peer retransmitted its SYN: our SYN-ACK was lost.
                sendSYN(now: now, into: &actions)
                return
            }
            if state == .timeWait && flags.contains(.fin) && seq + seg.payload.count + 1 == rcvNxt {
                // A retransmitted FIN in TIME-WAIT: its ACK was lost. Acknowledge it
                // again and restart the 2 MSL timer (RFC 9293 §3.10.7.4, step 8).
                timeWaitDeadline = now + configuration.timeWaitDuration
            }
            if !flags.contains(.rst) {
                ackNow = true
                sendAcknowledgment(now: now, into: &actions)
            }
            return
        }

        // Step 2: RST (RFC 5961 §3.2): only an exact match resets; any other
        // in-window RST earns a challenge ACK.
        if flags.contains(.rst) {
            guard seq == rcvNxt else {
                sendChallengeAck(now: now, into: &actions)
                return
            }
            optionExtension?.accepted(seg, state: state)
            switch state {
            case .synReceived where passiveOpen:
                returnToListen()
            case .synReceived:
                enterClosed(.refused, into: &actions)
            case .established, .finWait1, .finWait2, .closeWait:
                enterClosed(.reset, into: &actions)
            default:
                enterClosed(.reset, into: &actions)
            }
            return
        }

        // Step 4: SYN (RFC 5961 §4.2): a SYN in a synchronized state, in window
        // or not, earns a challenge ACK and changes nothing.
        if flags.contains(.syn) {
            if state == .synReceived && passiveOpen {
                returnToListen()
                return
            }
            sendChallengeAck(now: now, into: &actions)
            return
        }

        // Step 5: ACK.
        guard flags.contains(.ack) else { return }
        let ack = seg.acknowledgmentNumber
        if state == .synReceived {
            guard sndUna < ack && !(sndNxt < ack) else {
                send(TCPSegment(sourcePort: tuple.localPort, destinationPort: tuple.remotePort,
                                sequenceNumber: ack, flags: .rst, window: 0), into: &actions)
                return
            }
            state = .established
            rtoDeadline = nil
            sndWnd = Int(seg.window) << Int(sndShift); maxSndWnd = max(maxSndWnd, sndWnd)
            sndWl1 = seq; sndWl2 = ack
            sndUna = sndUna + 1 // the SYN
            highRxt = sndUna; lostUpTo = sndUna
            handshakeCompleted(now: now, echo: options.timestamp?.echoReply)
            if finQueued { state = .finWait1 }
        }
        // RFC 9293: an ACK for something not yet sent is answered with an ACK and dropped.
        if sndNxt < ack {
            ackNow = true
            sendAcknowledgment(now: now, into: &actions)
            return
        }
        // RFC 5961 §5.2: an ACK older than SND.UNA − MAX.SND.WND is dropped with an ACK.
        if ack < sndUna - max(maxSndWnd, 1) {
            sendChallengeAck(now: now, into: &actions)
            return
        }

        // RFC 7323 §4.3: TS.Recent follows the segment that the next ACK will acknowledge.
        if timestampsEnabled, let ts = options.timestamp,
           !(Int32(bitPattern: ts.value &- tsRecent) < 0), !(lastAckSent < seq) {
            tsRecent = ts.value
            tsRecentTime = now
        }

        optionExtension?.accepted(seg, state: state)
        processAcknowledgment(seg, options: options, now: now, into: &actions)
        if state == .closed { return }

        // Step 7: segment text, in the states that receive it.
        if !seg.payload.isEmpty {
            switch state {
            case .established, .finWait1, .finWait2: acceptText(seg, now: now)
            default: break
            }
        }

        // Step 8: FIN.
        if flags.contains(.fin) {
            let finSeq = seq + seg.payload.count
            if finSeq.isWithin(rcvNxt, length: max(rcvWnd, 1)) || finSeq == rcvNxt {
                remoteFinSequence = finSeq
            } else if state == .timeWait && finSeq + 1 == rcvNxt {
                // A retransmitted FIN in TIME-WAIT: acknowledge it and restart the 2 MSL timer.
                ackNow = true
                timeWaitDeadline = now + configuration.timeWaitDuration
            } else if finSeq + 1 == rcvNxt {
                ackNow = true // a duplicate FIN: our ACK of it was lost
            }
        }
        consumeRemoteFinIfReached(now: now)
    }

    /// Once all data before the peer's FIN is in, the FIN takes effect.
    mutating func consumeRemoteFinIfReached(now: Instant) {
        guard let finSeq = remoteFinSequence, finSeq == rcvNxt else { return }
        remoteFinSequence = nil
        remoteFinReceived = true
        rcvNxt = rcvNxt + 1
        ackNow = true
        switch state {
        case .synReceived, .established:
            state = .closeWait
        case .finWait1:
            state = finAcknowledged ? .timeWait : .closing
            if state == .timeWait { enterTimeWait(now: now) }
        case .finWait2:
            enterTimeWait(now: now)
        default:
            break
        }
    }

    var finAcknowledged: Bool { finSent && sndUna == sndNxt && sndNxt == dataEnd + 1 }
    var dataEnd: SequenceNumber { sendBufferStart + sendBuffer.count }

    // MARK: ACK processing (RFC 9293 §3.10.7.4 step 5, RFC 5681, RFC 6582, RFC 6675, RFC 6298)

    mutating func processAcknowledgment(_ seg: TCPSegment, options: ReceivedOptions, now: Instant,
                                        into actions: inout [TCPAction]) {
        let ack = seg.acknowledgmentNumber
        let mss = sendMaximumSegmentSize
        let flightBefore = pipe()

        var newlySACKed = 0
        if sackEnabled && !options.sackBlocks.isEmpty {
            counters.sackBlocksReceived += options.sackBlocks.count
            for block in options.sackBlocks where block.left < block.right {
                newlySACKed += scoreboard.add(block, cumulativeAck: max(ack, sndUna), highData: sndNxt)
            }
        }

        if ack < sndUna { return } // a duplicate of an old ACK: ignored (it cannot move the window)

        // Window update (RFC 9293 §3.10.7.4): only from a newer segment, or a newer ACK of the same one.
        let windowBefore = sndWnd
        if sndWl1 < seg.sequenceNumber || (sndWl1 == seg.sequenceNumber && !(ack < sndWl2)) {
            sndWnd = Int(seg.window) << Int(sndShift)
            maxSndWnd = max(maxSndWnd, sndWnd)
            sndWl1 = seg.sequenceNumber
            sndWl2 = ack
        }

        let acked = ack - sndUna
        if acked > 0 {
            // RTT: a timed segment that was never retransmitted (Karn), else the timestamp echo.
            var sampled = false
            if let timed = timedSegment, !(ack < timed.end) {
                rtt.addSample(now - timed.sentAt)
                timedSegment = nil
                sampled = true
            }
            if !sampled, timestampsEnabled, let ts = options.timestamp, ts.echoReply != 0 {
                let elapsed = Int64(Int32(bitPattern: timestampClock(now) &- ts.echoReply))
                if elapsed >= 0 { rtt.addSample(.milliseconds(Int(elapsed))) }
            }
            let dataAcked = max(0, min(ack, dataEnd) - sendBufferStart)
            sendBuffer.removeFirst(dataAcked)
            sendBufferStart = sendBufferStart + dataAcked
            sndUna = ack
            scoreboard.acknowledge(upTo: ack)
            if highRxt < sndUna { highRxt = sndUna }
            if lostUpTo < sndUna { lostUpTo = sndUna }
            duplicateAcks = 0
            consecutiveTimeouts = 0
            persistBackoff = 0

            if inRecovery {
                if !(ack < recoveryPoint) {
                    // RFC 6582 §3.2 step 3 / RFC 6675 §5: a full acknowledgment ends recovery.
                    inRecovery = false
                    renoSACKedSegments = 0
                    congestion.onRecoveryExit(now: now, bytesInFlight: pipe(), maximumSegmentSize: mss)
                } else if !sackEnabled {
                    // RFC 6582 §3.2 step 3, partial ACK: the next hole is lost too; retransmit it now.
                    renoSACKedSegments = max(0, renoSACKedSegments - acked / mss)
                    if lostUpTo < sndUna + mss { lostUpTo = min(sndUna + mss, sndNxt) }
                    forceRetransmission = true
                }
            } else {
                renoSACKedSegments = 0
                congestion.onAcknowledgment(AcknowledgmentSample(
                    now: now, acknowledgedBytes: acked, bytesInFlight: flightBefore,
                    smoothedRTT: rtt.smoothedRTT, latestRTT: rtt.latestRTT, minimumRTT: rtt.minimumRTTSeen,
                    maximumSegmentSize: mss, isCongestionWindowLimited: congestionWindowLimited))
            }
            // RFC 6298 §5.2/§5.3: stop the timer when all is acknowledged, else restart it.
            rtoDeadline = sndUna == sndNxt ? nil : now + rtt.timeout

            switch state {
            case .finWait1 where finAcknowledged: state = .finWait2
            case .closing where finAcknowledged: enterTimeWait(now: now)
            case .lastAck where finAcknowledged:
                enterClosed(.normal, into: &actions)
                return
            default: break
            }
        } else if sndUna < sndNxt && seg.payload.isEmpty && !seg.flags.contains(.fin) {
            // A duplicate ACK (RFC 5681 §2; with SACK, RFC 6675 §2: one that SACKs new data).
            let isDuplicate = sackEnabled ? newlySACKed > 0 : sndWnd == windowBefore
            if isDuplicate {
                duplicateAcks += 1
                counters.duplicateAcksReceived += 1
                if !sackEnabled {
                    let outstandingSegments = max(0, (sndNxt - sndUna + mss - 1) / mss - 1)
                    renoSACKedSegments = min(renoSACKedSegments + 1, outstandingSegments)
                }
            }
        }

        // Entering loss recovery (RFC 6675 §5 step 4, RFC 6582 §3.2 step 2).
        // RFC 6582 §3.2 step 1: not before the ACK covers more than `recover` (after an RTO).
        if !inRecovery && sndUna < sndNxt && recoverFloor < sndUna {
            let lossSignalled = duplicateAcks >= configuration.duplicateAckThreshold
                || (sackEnabled && scoreboard.isLost(sndUna, duplicateThreshold: configuration.duplicateAckThreshold,
                                                     maximumSegmentSize: mss))
            if lossSignalled { enterRecovery(now: now) }
        }
    }

    mutating func enterRecovery(now: Instant) {
        let mss = sendMaximumSegmentSize
        inRecovery = true
        recoveryPoint = sndNxt
        counters.fastRecoveries += 1
        congestion.onCongestionEvent(now: now, bytesInFlight: sndNxt - sndUna, maximumSegmentSize: mss)
        // The first unacknowledged segment is lost; retransmit it whatever the window says
        // (RFC 6675 §5 step 4.3, RFC 6582 §3.2 step 2).
        let firstEnd = min(sndUna + mss, sndNxt)
        if lostUpTo < firstEnd { lostUpTo = firstEnd }
        if highRxt < sndUna { highRxt = sndUna }
        forceRetransmission = true
    }

    // MARK: Receiving data

    /// Step 7: takes the in-window part of the segment's text, in order or into reassembly.
    mutating func acceptText(_ seg: TCPSegment, now: Instant) {
        var start = seg.sequenceNumber + (seg.flags.contains(.syn) ? 1 : 0)
        var bytes = seg.payload[...]
        if start < rcvNxt {
            let skip = min(rcvNxt - start, bytes.count)
            bytes = bytes.dropFirst(skip)
            start = rcvNxt
        }
        let room = max(0, rcvAdvertisedRight - start)
        if bytes.count > room { bytes = bytes.prefix(room) }
        guard !bytes.isEmpty else { ackNow = true; return }
        if start == rcvNxt {
            receiveQueue.append(contentsOf: bytes)
            rcvNxt = rcvNxt + bytes.count
            if !reassembly.isEmpty {
                var filled = false
                while let more = reassembly.popContiguous(at: rcvNxt) {
                    receiveQueue.append(contentsOf: more)
                    rcvNxt = rcvNxt + more.count
                    filled = true
                }
                // RFC 5681 §4.2: a segment that fills a gap is acknowledged at once.
                ackNow = ackNow || filled || !reassembly.isEmpty
            }
            // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: at least every second full segment.
            segmentsSinceAck += 1
            if segmentsSinceAck >= 2 {
                ackNow = true
            } else if delayedAckDeadline == nil {
                delayedAckDeadline = now + configuration.delayedAckTimeout
            }
        } else {
            // RFC 5681 §4.2: out-of-order data is acknowledged at once (a duplicate ACK).
            counters.outOfOrderSegmentsReceived += 1
            reassembly.insert(bytes, at: start)
            ackNow = true
        }
    }
}
