// The documents the SDK sends. Their text is fixed, so their APQ hashes are too.

const SUMMARY = "contentId likes reactions { reaction count } viewerReaction views uniqueViewers";

export const LIKE = `mutation LikeviewLike($input: LikeInput!) { like(input: $input) { contentId viewerReaction changed summary { ${SUMMARY} } } }`;

export const UNLIKE = `mutation LikeviewUnlike($input: UnlikeInput!) { unlike(input: $input) { contentId viewerReaction changed summary { ${SUMMARY} } } }`;

export const RECORD_VIEWS = "mutation LikeviewRecordViews($v: [ViewInput!]!) { recordViews(inputs: $v) { contentId sessionId decision { counted rule reason } } }";

export const ENGAGEMENT_UPDATED = `subscription LikeviewSummaries($ids: [ID!]!) { engagementUpdated(contentIds: $ids) { ${SUMMARY} } }`;
