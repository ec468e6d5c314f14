#!/usr/bin/env python3
"""Generates examples/posts.jsonl: realistic forum posts for trying shenhe.

Deterministic (fixed seed): running it again gives the same file. The sentences are our
own; about one post in six violates a bundled rule, some carry the false-positive traps
the bundled allow phrases exist for, and some are written the way evaders write
(traditional characters, symbols between characters), which exact matching misses and
the normalisation work catches.

    python3 examples/make_posts.py > examples/posts.jsonl
    python3 examples/make_posts.py --count 1000000 > /tmp/big.jsonl   # for load tests
"""
import argparse
import json
import random

BOARDS = {
    "tech": [
        "新买的笔记本风扇声音有点大，是不是正常现象？",
        "求推荐一款适合写代码的机械键盘，预算五百以内。",
        "升级系统以后蓝牙耳机老是断连，有人遇到过吗？",
        "路由器放在客厅，卧室信号只有一格，加个中继有用吗？",
        "分享一个小技巧：把常用命令写成脚本能省不少时间。",
        "公司内网访问很慢，排查了半天发现是交换机的问题。",
        "手机电池健康度掉到百分之八十了，换电池还是换手机？",
        "显卡驱动回退到上一个版本以后就不花屏了。",
        "这个开源项目的文档写得很清楚，新手也能看懂。",
        "硬盘里的照片误删了，有什么靠谱的恢复软件？",
    ],
    "life": [
        "小区门口新开了一家面馆，牛肉面分量很足。",
        "周末带孩子去公园放风筝，天气特别好。",
        "楼上装修一个月了，每天早上八点准时开钻。",
        "今天菜市场的西红柿三块五一斤，比上周便宜。",
        "有没有人知道附近哪里可以修自行车？",
        "家里的绿萝叶子发黄，是浇水太多了吗？",
        "物业说下周二停水检修，大家提前接点水。",
        "第一次自己做红烧肉，颜色有点深但味道还行。",
        "地铁四号线早高峰真的太挤了。",
        "养了一只橘猫，每天晚上在客厅跑酷。",
    ],
    "finance": [
        "房贷利率又降了，提前还款还划算吗？",
        "定投指数基金三年了，收益率大概百分之六。",
        "信用卡账单日和还款日怎么设置比较合理？",
        "公积金贷款额度和缴存基数有关系吗？",
        "理财产品说保本的都要多留个心眼。",
        "年底了，整理一下今年的家庭账本。",
        "个税汇算清缴退了八百多，开心。",
        "银行大堂经理推荐的保险，感觉条款看不太懂。",
    ],
    "game": [
        "这个赛季的新英雄强度有点超标。",
        "昨晚排位连跪五把，心态崩了。",
        "求组队，周末晚上一起打副本。",
        "新版本的画面优化得不错，帧数稳定多了。",
        "抽卡保底机制改了以后良心多了。",
        "这个关卡卡了我一个小时，终于过了。",
        "公会招人，每天上线就行，不强制活动。",
    ],
    "travel": [
        "国庆去了趟西安，兵马俑人山人海。",
        "大理的民宿推荐一下，想住洱海边。",
        "高铁上遇到一个特别热心的列车员。",
        "第一次去新疆，一路上风景太美了。",
        "自驾川西要注意高原反应，备好氧气瓶。",
        "我们去了尼玛县，海拔很高但星空绝美。",
        "青岛的海鲜市场可以现买现做，价格公道。",
    ],
    "parenting": [
        "孩子上一年级了，每天作业要写到九点。",
        "宝宝六个月了，辅食先加米粉还是蛋黄？",
        "幼儿园老师说孩子最近午睡不太好。",
        "周末带娃去科技馆，互动项目很多。",
        "给孩子报兴趣班，钢琴和画画选哪个？",
    ],
}

# False-positive traps: ordinary text the bundled allow phrases keep clean.
TRAPS = [
    "周末带孩子去溜冰场玩了一下午。",
    "旧物改造：废物利用做了个收纳盒。",
    "这款磨砂膏去死皮效果挺好。",
    "派出所开展打击赌博专项行动，居民拍手称快。",
    "卫生间地漏返水怎么办？师傅说要换防臭地漏。",
    "这款彩金项链好看吗？准备送给老婆。",
    "社区举办禁毒宣传活动，发了很多资料。",
    "鸦片战争是中国近代史的开端。",
    "银行发布反洗钱提示，提醒大家保护账户。",
    "市民服务中心办证大厅搬到了三楼。",
    "谨防刷单诈骗，保护好自己的钱包。",
    "警方严厉打击贩卖毒品犯罪。",
]

# Violations of the bundled rules, written plainly.
VIOLATIONS = [
    "最新网络赌场上线，注册送彩金，百家乐真人荷官在线。",
    "出售冰毒，价格私聊，同城当面交易。",
    "高价收购银行卡，一张三百，长期有效。",
    "代开增值税发票，点数低，可验证。",
    "刷单兼职日赚千元，宝妈学生都可以做。",
    "楼主就是个傻逼，别理他。",
    "你这种脑残也配发帖？",
    "同城约炮，加我详聊。",
    "出售枪支，货到付款，全国包邮。",
    "想要的加微信 abc12345 私聊。",
    "首充送888元，六合彩内幕资料免费看。",
    "我要报复社会，你们等着。",
    "紧急扩散！明天全城停水停电！不转不是中国人！",
    "大师开光转运符，灵验无比，九九八一张。",
    "投资虚拟币带单，稳赚不赔，名额有限。",
    "这种人就是人渣，全家都是混蛋。",
    "高收益理财，保本保息，名额有限，加我详聊。",
]

# The same violations the way evaders write them: missed by exact matching.
EVASIONS = [
    "最新網絡賭場上線，百家樂真人荷官。",
    "出售冰*毒，价格私聊。",
    "网 络 赌 场，注册就送。",
    "楼主是个傻\u200b逼。",
    "ｄｕｂｏ网站，稳赚不赔。",
]

NAMES = ["小王", "阿强", "晴天", "老李头", "橘子汽水", "程序员老张", "宝妈小敏", "背包客", "夜猫子", "木子"]


def make_post(rng, i, start_ts):
    board = rng.choice(list(BOARDS))
    sentences = rng.sample(BOARDS[board], k=rng.randint(1, 3))
    roll = rng.random()
    kind = "clean"
    if roll < 0.16:
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(VIOLATIONS))
        kind = "violation"
    elif roll < 0.24:
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(TRAPS))
        kind = "trap"
    elif roll < 0.28:
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(EVASIONS))
        kind = "evasion"
    text = "".join(sentences)
    if rng.random() < 0.1:
        text += rng.choice(["😂", "👍", "🙏", "[doge]", "哈哈哈", "～"])
    ts = start_ts + i * 137 + rng.randint(0, 120)
    uid = rng.randint(1, 60)
    verified = rng.random() < 0.8
    ip_last = rng.randint(1, 254)
    ip = f"203.0.113.{ip_last}" if rng.random() < 0.85 else f"2001:db8::{ip_last:x}"
    post = {
        "id": f"p{i + 1}",
        "board": board,
        "time": iso(ts),
        "text": text,
        "poster": {
            "user_id": f"u{uid}",
            "name": NAMES[uid % len(NAMES)],
            "verified": verified,
            "ip": ip,
            "port": rng.randint(1024, 65535),
            # One account in eight is less than a week old.
            "registered": iso(ts - (rng.randint(0, 6) if rng.random() < 0.125 else rng.randint(7, 900)) * 86400 - rng.randint(0, 86399)),
        },
    }
    if verified:
        post["poster"]["identity_ref"] = f"kyc-{uid:06d}"
    if rng.random() < 0.3:
        post["title"] = sentences[0][:12]
    return post, kind


def iso(ts):
    # UTC+08:00, without depending on the local time zone.
    import datetime

    tz = datetime.timezone(datetime.timedelta(hours=8))
    return datetime.datetime.fromtimestamp(ts, tz).isoformat()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261125)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    start_ts = 1_763_600_000  # 2025-11-20
    out = []
    for i in range(args.count):
        post, _ = make_post(rng, i, start_ts)
        out.append(json.dumps(post, ensure_ascii=False, separators=(",", ":")))
        if len(out) >= 10000:
            print("\n".join(out))
            out.clear()
    if out:
        print("\n".join(out))


if __name__ == "__main__":
    main()
