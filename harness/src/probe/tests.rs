use super::*;

/// Recorded from a push-server on Linux 6.x (trimmed).
const STATUS: &str = "Name:\tpush-server\nUmask:\t0022\nState:\tS (sleeping)\n\
    Tgid:\t41234\nPid:\t41234\nVmPeak:\t  570164 kB\nVmSize:\t  570100 kB\n\
    VmLck:\t       0 kB\nVmHWM:\t   48812 kB\nVmRSS:\t   40960 kB\n\
    RssAnon:\t   36000 kB\nThreads:\t3\nCpus_allowed_list:\t0\n";

/// Recorded from Linux 6.18 (trimmed; `MaxConn` is -1 there).
const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives\nIp: 2 64 172247425\n\
    Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens RetransSegs InErrs\n\
    Tcp: 1 200 120000 -1 1082118 29279 0\n\
    Udp: InDatagrams NoPorts\nUdp: 10 0\n";
const NETSTAT: &str = "TcpExt: SyncookiesSent DelayedACKs DelayedACKLocked DelayedACKLost \
    ListenOverflows ListenDrops TCPLossProbes\n\
    TcpExt: 142 1791712 57 27665 1518 1518 26497\n\
    IpExt: InNoRoutes InTruncatedPkts\nIpExt: 0 0\n";

#[test]
fn tcp_counters_come_from_the_snmp_and_netstat_tables() {
    let t = parse_tcp_counters(SNMP, NETSTAT).unwrap();
    assert_eq!(
        t,
        TcpEvents {
            retrans_segs: 29_279,
            delayed_ack_lost: 27_665,
            loss_probes: 26_497,
            listen_overflows: 1_518,
        }
    );
    // A negative value (MaxConn) is left out, not misread.
    let tcp = parse_net_table(SNMP, "Tcp");
    assert!(tcp.iter().all(|(n, _)| n != "MaxConn"), "{tcp:?}");
    assert_eq!(tcp.len(), 6);
    // `Tcp` does not match `TcpExt`, nor the other way round.
    assert!(parse_net_table(NETSTAT, "Tcp").is_empty());
    assert_eq!(
        parse_tcp_counters("", NETSTAT),
        None,
        "RetransSegs is required"
    );
    let later = TcpEvents {
        retrans_segs: 29_289,
        ..t
    };
    let d = tcp_events_between(&t, &later);
    assert_eq!(
        (d.retrans_segs, d.delayed_ack_lost, d.listen_overflows),
        (10, 0, 0)
    );
    // A counter that went backwards (a reset namespace) reads 0, not a wrap.
    assert_eq!(tcp_events_between(&later, &t).retrans_segs, 0);
}

#[test]
fn status_gives_rss_and_high_water_mark_in_bytes() {
    let s = parse_status(STATUS).unwrap();
    assert_eq!(s.rss_bytes, 40_960 * 1024);
    assert_eq!(s.hwm_bytes, 48_812 * 1024);
    // `RssAnon` must not be mistaken for `VmRSS`, nor `VmHWM` required.
    let s = parse_status("VmRSS:\t12 kB\n").unwrap();
    assert_eq!((s.rss_bytes, s.hwm_bytes), (12 * 1024, 0));
    // A kernel thread has no VmRSS; garbage is not a status file.
    assert_eq!(parse_status("Name:\tkworker/0:1\nState:\tI (idle)\n"), None);
    assert_eq!(parse_status("VmRSS:\tlots kB\n"), None);
    assert_eq!(parse_status("VmRSS:\t12 MB\n"), None);
    assert_eq!(parse_status(""), None);
}

#[test]
fn stat_counts_fields_after_the_last_parenthesis() {
    // utime 1234, stime 567 (fields 14 and 15).
    let plain = "41234 (push-server) S 41200 41234 41200 0 -1 4194560 1000 0 0 0 \
                 1234 567 0 0 20 0 3 0 384373 570100000 10240 18446744073709551615";
    assert_eq!(
        parse_stat(plain),
        Some(CpuTicks {
            utime: 1234,
            stime: 567
        })
    );
    // A command name with spaces and parentheses shifts nothing.
    let odd = "7 (tokio (rt) 1) x) R 1 7 7 0 -1 0 0 0 0 0 9 8 0 0 20 0 1 0 5 100 10 0";
    assert_eq!(parse_stat(odd), Some(CpuTicks { utime: 9, stime: 8 }));
    let t = CpuTicks {
        utime: 150,
        stime: 50,
    };
    assert!((t.seconds(100) - 2.0).abs() < 1e-12);
    // Truncated or garbled lines are refused, not misread.
    assert_eq!(parse_stat("41234 (push-server) S 1 2 3"), None);
    assert_eq!(parse_stat("no parenthesis at all"), None);
    assert_eq!(
        parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 5 0 0 20 0 1 0 5 100 10 0"),
        None
    );
}

#[test]
fn sockstat_gives_the_tcp_line() {
    let text = "sockets: used 15\nTCP: inuse 5003 orphan 2 tw 110 alloc 5010 mem 1234\n\
                UDP: inuse 0 mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";
    assert_eq!(
        parse_sockstat(text),
        Some(SockStat {
            inuse: 5003,
            orphan: 2,
            tw: 110,
            alloc: 5010,
            mem_pages: 1234
        })
    );
    // The UDP line's `mem` is not TCP's.
    assert_eq!(parse_sockstat("UDP: inuse 0 mem 7\n"), None);
    assert_eq!(parse_sockstat("TCP: inuse 1 orphan 0\n"), None);
}

#[test]
fn this_process_can_be_read() {
    let me = read_process(None).unwrap();
    assert!(me.rss_bytes > 0 && me.hwm_bytes >= me.rss_bytes);
    assert!(me.cpu_s >= 0.0);
    assert_eq!(clock_ticks(), 100, "Linux reports USER_HZ = 100");
    assert!(page_size() >= 4096);
    assert!(read_tcp_mem_bytes().is_some());
    assert_eq!(read_process(Some(u32::MAX)), None, "no such process");
    let s = sample(&Procs::one(Some(std::process::id())));
    assert!(s.server_rss_bytes.is_some() && s.fleet_rss_bytes.is_some());
}

#[test]
fn a_process_is_summed_with_its_descendants() {
    // A shell (not exec'ing: `; true` keeps it) whose child sleeps.
    let mut sh = std::process::Command::new("sh")
        .args(["-c", "sleep 30; true"])
        .spawn()
        .unwrap();
    let pid = sh.id();
    // The fork happens after the spawn returns, and the child's exec of
    // `sleep` after that: wait (bounded) until the child is `sleep`, asleep,
    // so neither process's memory is still moving when it is read.
    let settled = |c: &u32| {
        let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{c}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next());
        comm.trim() == "sleep" && state == Some("S")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !children(pid).first().is_some_and(settled) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let kids = children(pid);
    let tree = read_process(Some(pid));
    let shell = read_one(&format!("/proc/{pid}"));
    let child = kids.first().and_then(|c| read_one(&format!("/proc/{c}")));
    let _ = sh.kill();
    let _ = std::process::Command::new("kill")
        .args(kids.iter().map(u32::to_string))
        .status();
    let _ = sh.wait();
    assert_eq!(kids.len(), 1, "the shell's one child: {kids:?}");
    let (tree, shell, child) = (tree.unwrap(), shell.unwrap(), child.unwrap());
    // Each read once; the tree was read before the two parts, and an idle
    // sleeping shell and `sleep` do not change their RSS meanwhile by a page.
    assert!(
        tree.rss_bytes + 2 * page_size() >= shell.rss_bytes + child.rss_bytes
            && tree.rss_bytes > shell.rss_bytes,
        "tree {} vs shell {} + child {}",
        tree.rss_bytes,
        shell.rss_bytes,
        child.rss_bytes
    );
}

#[tokio::test]
async fn settling_is_bounded() {
    let t = std::time::Instant::now();
    settle_sockets(Duration::from_millis(300)).await;
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn sampler_and_lag_probe_report_and_stop() {
    let sampler = Sampler::start(Some(std::process::id()), Duration::from_millis(20));
    let window = Arc::new(Window::new());
    let now = protocol::now_us();
    window.set(now, now + 60_000_000);
    let lag = LagProbe::start(window);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let samples = sampler.stop().await;
    let lag = lag.stop().await;
    assert!(samples.len() >= 3, "{}", samples.len());
    assert!(samples.windows(2).all(|w| w[0].t_us <= w[1].t_us));
    assert!(lag.len() >= 5, "{} wake-ups", lag.len());
}
