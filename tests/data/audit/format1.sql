PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES('key_check','none');
INSERT INTO meta VALUES('schema','1');
INSERT INTO meta VALUES('utc_offset_hours','8');
CREATE TABLE runs (
    run INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    input TEXT,
    output TEXT,
    ruleset TEXT NOT NULL
);
INSERT INTO runs VALUES(1,'2026-12-02T23:33:46.188454332Z','2026-12-02T23:33:46.216074176Z','/tmp/f1.jsonl','/dev/null','7dfa4882840ac4ee85c90938fb94c285befb850fb0e3317837fd268cf237f855');
CREATE TABLE records (
    seq INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    run INTEGER NOT NULL,
    line INTEGER,
    post_id TEXT,
    post_time TEXT,
    scan_time TEXT NOT NULL,
    user_id TEXT,
    personal TEXT NOT NULL,
    content TEXT NOT NULL,
    categories TEXT NOT NULL,
    action TEXT NOT NULL,
    report INTEGER NOT NULL,
    measures TEXT NOT NULL,
    hits TEXT NOT NULL,
    ruleset TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO records VALUES(1,'2026-12-03',1,1,'"p1"','2025-11-20T08:54:45+08:00','2026-12-02T23:33:46.21505206Z','u31','{"ip":"203.0.113.32","port":41949,"identity_ref":"kyc-000031","name":"阿强","verified":true}','{"board":"tech","text":"ｄｕｂｏ网站，稳赚不赔。显卡驱动回退到上一个版本以后就不花屏了。这个开源项目的文档写得很清楚，新手也能看懂。"}','[7,9]','delete',1,'[]','[{"rule":"gambling.mention","category":7,"severity":"medium","field":"text","start":0,"end":12,"char_start":0,"char_end":4,"matched":"ｄｕｂｏ","term":"赌博","steps":["width","pinyin"]},{"rule":"fraud.scam","category":9,"severity":"high","field":"text","start":21,"end":33,"char_start":7,"char_end":11,"matched":"稳赚不赔","term":"稳赚不赔","steps":[]}]','7dfa4882840ac4ee85c90938fb94c285befb850fb0e3317837fd268cf237f855','0000000000000000000000000000000000000000000000000000000000000000','f3d5eb608253245695ef0f1b419a24d52ba891ea061202849ca9c9afe012c514');
INSERT INTO records VALUES(2,'2026-12-03',1,2,'"p2"','2025-11-20T08:57:00+08:00','2026-12-02T23:33:46.21505206Z','u37','{"ip":"203.0.113.22","port":29543,"identity_ref":"kyc-000037","name":"背包客","verified":true}','{"board":"parenting","text":"孩子上一年级了，每天作业要写到九点。给孩子报兴趣班，钢琴和画画选哪个？"}','[]','allow',0,'[]','[]','7dfa4882840ac4ee85c90938fb94c285befb850fb0e3317837fd268cf237f855','f3d5eb608253245695ef0f1b419a24d52ba891ea061202849ca9c9afe012c514','86bde64eab5a10ae1bd6965e7a58d03259bbe8e752c81f126c2943f74f7bd22e');
INSERT INTO records VALUES(3,'2026-12-03',1,3,'"p3"','2025-11-20T08:58:09+08:00','2026-12-02T23:33:46.21505206Z','u46','{"ip":"203.0.113.59","port":14029,"identity_ref":"kyc-000046","name":"宝妈小敏","verified":true}','{"board":"parenting","text":"给孩子报兴趣班，钢琴和画画选哪个？投资虚拟币带单，稳赚不赔，名额有限。幼儿园老师说孩子最近午睡不太好。"}','[9]','delete',1,'[]','[{"rule":"fraud.scam","category":9,"severity":"high","field":"text","start":57,"end":72,"char_start":19,"char_end":24,"matched":"虚拟币带单","term":"虚拟币带单","steps":[]},{"rule":"fraud.scam","category":9,"severity":"high","field":"text","start":75,"end":87,"char_start":25,"char_end":29,"matched":"稳赚不赔","term":"稳赚不赔","steps":[]}]','7dfa4882840ac4ee85c90938fb94c285befb850fb0e3317837fd268cf237f855','86bde64eab5a10ae1bd6965e7a58d03259bbe8e752c81f126c2943f74f7bd22e','79be608edd08f37eea3c0fe2c707824738ca59c745382023cb3f8efa2085765d');
INSERT INTO records VALUES(4,'2026-12-03',1,4,'"p4"','2025-11-20T09:01:58+08:00','2026-12-02T23:33:46.21505206Z','u59','{"ip":"203.0.113.149","port":37982,"identity_ref":"kyc-000059","name":"木子","verified":true}','{"board":"parenting","text":"紧急扩散！明天全城停水停电！不转不是中国人！宝宝六个月了，辅食先加米粉还是蛋黄？幼儿园老师说孩子最近午睡不太好。给孩子报兴趣班，钢琴和画画选哪个？"}','[6]','review',0,'[]','[{"rule":"rumour.chain-message","category":6,"severity":"medium","field":"text","start":0,"end":12,"char_start":0,"char_end":4,"matched":"紧急扩散","term":"紧急扩散","steps":[]},{"rule":"rumour.chain-message","category":6,"severity":"medium","field":"text","start":15,"end":39,"char_start":5,"char_end":13,"matched":"明天全城停水停电","term":"明天全城停水停电","steps":[]},{"rule":"rumour.chain-message","category":6,"severity":"medium","field":"text","start":42,"end":63,"char_start":14,"char_end":21,"matched":"不转不是中国人","term":"不转不是中国人","steps":[]}]','7dfa4882840ac4ee85c90938fb94c285befb850fb0e3317837fd268cf237f855','79be608edd08f37eea3c0fe2c707824738ca59c745382023cb3f8efa2085765d','88b59f6a3ce1ebcd4aa33dfa00229a8a9b306b1bddc64a8e7cda8c3ae64c4157');
INSERT INTO records VALUES(5,'2026-12-03',1,5,'"p5"','2025-11-20T09:03:00+08:00','2026-12-02T23:33:46.21505206Z','u55','{"ip":"203.0.113.94","port":28084,"identity_ref":"kyc-000055","name":"程序员老张","verified":true}','{"board":"finance","text":"房贷利率又降了，提前还款还划算吗？旧物改造：废物利用做了个收纳盒。"}','[]','allow',0,'[]','[]','7dfa4882840ac4ee85c90938fb94c285befb850fb0e3317837fd268cf237f855','88b59f6a3ce1ebcd4aa33dfa00229a8a9b306b1bddc64a8e7cda8c3ae64c4157','ac904ef41b95c0edb555d53a233220f0bc8bd677566c5ff57424e408da61e5bd');
CREATE TABLE manifest (
    day TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    final_hash TEXT NOT NULL,
    pruned_at TEXT,
    pruned_count INTEGER NOT NULL DEFAULT 0
);
INSERT INTO manifest VALUES('2026-12-03',1,5,5,'ac904ef41b95c0edb555d53a233220f0bc8bd677566c5ff57424e408da61e5bd',NULL,0);
CREATE TABLE holds (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);
COMMIT;
